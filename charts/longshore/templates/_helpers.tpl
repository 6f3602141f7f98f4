{{/* The chart's name, cut to 63 characters (a DNS label). */}}
{{- define "longshore.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, cut to 63 characters. */}}
{{- define "longshore.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A component's name: the full name and the component, cut to 63 characters. */}}
{{- define "longshore.componentName" -}}
{{- printf "%s-%s" (include "longshore.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "longshore.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries (app.kubernetes.io/*). Call with (dict "root" $ "component" NAME). */}}
{{- define "longshore.labels" -}}
helm.sh/chart: {{ include "longshore.chart" .root }}
{{ include "longshore.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: longshore
{{- end }}

{{/* The labels a component's selector uses. */}}
{{- define "longshore.selectorLabels" -}}
app.kubernetes.io/name: {{ include "longshore.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/component: {{ .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "longshore.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "longshore.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "longshore.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the broker's and the database's URLs (an existing one, or the chart's). */}}
{{- define "longshore.brokerSecret" -}}
{{- default (include "longshore.componentName" (dict "root" . "component" "urls")) .Values.broker.existingSecret }}
{{- end }}
{{- define "longshore.databaseSecret" -}}
{{- default (include "longshore.componentName" (dict "root" . "component" "urls")) .Values.database.existingSecret }}
{{- end }}

{{/* The environment every Longshore process gets. */}}
{{- define "longshore.env" -}}
- name: LONGSHORE_BROKER_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "longshore.brokerSecret" . }}
      key: {{ .Values.broker.existingSecretKey }}
- name: LONGSHORE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "longshore.databaseSecret" . }}
      key: {{ .Values.database.existingSecretKey }}
{{- if .Values.stacksManifest }}
- name: LONGSHORE_STACKS
  value: /etc/longshore/manifest/stacks.toml
{{- end }}
{{- range $name, $value := .Values.settings }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* Volumes and mounts for a custom stack manifest. */}}
{{- define "longshore.manifestVolume" -}}
{{- if .Values.stacksManifest }}
- name: stacks
  configMap:
    name: {{ include "longshore.componentName" (dict "root" . "component" "stacks") }}
{{- end }}
{{- end }}
{{- define "longshore.manifestMount" -}}
{{- if .Values.stacksManifest }}
- name: stacks
  mountPath: /etc/longshore/manifest
  readOnly: true
{{- end }}
{{- end }}

{{/* Annotations that roll pods when what they read changes. */}}
{{- define "longshore.checksums" -}}
checksum/urls: {{ printf "%s%s" .Values.broker.url .Values.database.url | sha256sum }}
checksum/settings: {{ toJson .Values.settings | sha256sum }}
checksum/stacks: {{ .Values.stacksManifest | sha256sum }}
{{- end }}
