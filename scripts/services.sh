#!/usr/bin/env bash
# Start the local services Longshore needs for development and CI, installing
# any that are missing (CI machines start bare). Idempotent: whatever already
# runs is reused, never restarted. Exports nothing; clients use these URLs:
#
#   docker      unix:///var/run/docker.sock
#   rabbitmq    amqp://guest:guest@127.0.0.1:5672//   (management http://127.0.0.1:15672, metrics :15692)
#   postgres    postgresql://longshore:longshore@127.0.0.1:5432/longshore
#   registry    127.0.0.1:5000   (plain HTTP, no auth; the engine treats 127.0.0.0/8 as insecure)
#   registry-auth  127.0.0.1:5001   a second registry that asks for credentials (plain HTTP, htpasswd
#               basic auth, bcrypt): user `longshore`, password `registry-test-password`
#   docker2     unix:///var/run/longshore-docker2.sock   a second engine, standing for a second host
#               (its own socket, data root, exec root, containerd namespace, key and bridge),
#               with the busybox stack image loaded from the first
#   prometheus  only installs promtool/prometheus; tests start their own server
#   runsc       gVisor (Debian's runsc) registered with the first engine as the OCI runtime `runsc`
#
# Usage: scripts/services.sh [docker] [docker2] [rabbitmq] [postgres] [registry] [registry-auth] [prometheus] [runsc]
#        (no arguments = docker rabbitmq postgres registry)
set -euo pipefail

REGISTRY_DIR=/tmp/longshore-registry
REGISTRY_AUTH_DIR=/tmp/longshore-registry-auth
REGISTRY_AUTH_USER=longshore
REGISTRY_AUTH_PASSWORD=registry-test-password
APT_UPDATED=

log() { echo "services.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# need PATTERN PKG: install PKG unless a file matches the glob PATTERN;
# apt-get update at most once per run
need() {
    local pattern=$1 pkg=$2
    compgen -G "$pattern" >/dev/null && return 0
    log "installing $pkg"
    if [[ -z $APT_UPDATED ]]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq "$pkg" >/dev/null
}

# wait_for NAME SECONDS LOGFILE CMD...: poll CMD once a second; on timeout show the log and fail
wait_for() {
    local name=$1 secs=$2 logfile=$3; shift 3
    local i
    for ((i = 0; i < secs; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 1
    done
    log "$name did not become ready within ${secs}s; tail of $logfile:"
    # shellcheck disable=SC2086  # unquoted on purpose: may list several logs or a glob
    tail -n 30 $logfile >&2 || true
    die "$name: timeout"
}

# running_as PIDFILE NAME: the pid file names a live process called NAME. A pid file left by a machine
# whose processes were all killed can name a pid another program has since been given: kill -0 alone
# would take it for ours.
running_as() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]]
}

# forget_stale_containerd EXEC_ROOT: dockerd trusts its containerd's pid file, and when that pid lives
# (reused by any program) it waits for a containerd that never answers ("timeout waiting for containerd
# to start"), so a pid file not naming a containerd goes.
forget_stale_containerd() {
    local pidfile=$1/containerd/containerd.pid
    [[ -f $pidfile ]] && ! running_as "$pidfile" containerd && rm -f "$pidfile"
    return 0
}

start_docker() {
    need /usr/sbin/dockerd docker.io   # Debian puts dockerd in sbin
    docker info >/dev/null 2>&1 && return 0
    # a dockerd that is still starting is waited for, not started twice (the first engine's pid file:
    # a second engine, docker2, is another dockerd)
    if ! running_as /var/run/docker.pid dockerd; then
        rm -f /var/run/docker.pid   # dockerd refuses to start while its pid file names a live process
        forget_stale_containerd /var/run/docker
        # setsid+nohup: the daemon must outlive this shell
        (setsid nohup dockerd --host unix:///var/run/docker.sock >/tmp/longshore-dockerd.log 2>&1 &)
    fi
    wait_for docker 60 /tmp/longshore-dockerd.log docker info
}

DOCKER2_SOCKET=/var/run/longshore-docker2.sock
DOCKER2=(docker -H "unix://$DOCKER2_SOCKET")

start_docker2() {
    start_docker
    if ! "${DOCKER2[@]}" info >/dev/null 2>&1; then
        if ! pgrep -f "dockerd.*$DOCKER2_SOCKET" >/dev/null; then
            mkdir -p /var/lib/longshore-docker2 /var/run/longshore-docker2
            rm -f /var/run/longshore-docker2.pid
            forget_stale_containerd /var/run/longshore-docker2
            # A bridge of its own: with `--bridge none` dockerd deletes docker0, the first engine's.
            ip link show longshore-br2 >/dev/null 2>&1 || ip link add longshore-br2 type bridge
            # A key of its own: the engine's id (which a worker's identity is tied to) comes from it.
            echo '{"deprecated-key-path": "/var/lib/longshore-docker2/key.json"}' >/var/lib/longshore-docker2/daemon.json
            (setsid nohup dockerd --host "unix://$DOCKER2_SOCKET" --data-root /var/lib/longshore-docker2 \
                --exec-root /var/run/longshore-docker2 --pidfile /var/run/longshore-docker2.pid \
                --containerd-namespace longshore-docker2 --containerd-plugins-namespace longshore-docker2-plugins \
                --config-file /var/lib/longshore-docker2/daemon.json \
                --bridge longshore-br2 --iptables=false --ip-masq=false >/tmp/longshore-dockerd2.log 2>&1 &)
        fi
        wait_for docker2 60 /tmp/longshore-dockerd2.log "${DOCKER2[@]}" info
    fi
    # The second host has no registry to pull from: give it the busybox stack image of the first.
    if ! "${DOCKER2[@]}" image inspect longshore/busybox:1 >/dev/null 2>&1 && docker image inspect longshore/busybox:1 >/dev/null 2>&1; then
        docker save longshore/busybox:1 | "${DOCKER2[@]}" load >/dev/null
    fi
}

# ping answers as soon as the Erlang node is up, ~1 s before the listeners
# open; check_port_connectivity waits for AMQP, management and metrics ports
rabbit_up() { rabbitmq-diagnostics -q ping -t 5; }
rabbit_ready() { rabbitmq-diagnostics -q check_port_connectivity -t 5; }

start_rabbitmq() {
    need /usr/sbin/rabbitmq-server rabbitmq-server
    local plugins=(rabbitmq_management rabbitmq_prometheus)
    local logs="/tmp/longshore-rabbitmq.log /var/log/rabbitmq/*.log"
    if rabbit_up >/dev/null 2>&1; then
        wait_for rabbitmq 90 "$logs" rabbit_ready
        rabbitmq-plugins -q enable "${plugins[@]}" >/dev/null   # online: takes effect now
        return 0
    fi
    rabbitmq-plugins -q enable --offline "${plugins[@]}" >/dev/null  # read at start
    # listen on loopback only (the default is all interfaces); conf.d leaves
    # /etc/rabbitmq/rabbitmq.conf free for tests that tune e.g. consumer_timeout
    mkdir -p /etc/rabbitmq/conf.d
    cat >/etc/rabbitmq/conf.d/10-longshore.conf <<'EOF'
listeners.tcp.default = 127.0.0.1:5672
management.tcp.ip = 127.0.0.1
prometheus.tcp.ip = 127.0.0.1
EOF
    # the Debian wrapper drops to the rabbitmq user; -detached returns at once
    rabbitmq-server -detached >/tmp/longshore-rabbitmq.log 2>&1 || true
    wait_for rabbitmq 90 "$logs" rabbit_ready
}

psql_pg() { (cd / && runuser -u postgres -- psql -XqtA -v ON_ERROR_STOP=1 "$@"); }

start_postgres() {
    need "/usr/lib/postgresql/*/bin/postgres" postgresql
    local ver
    # shellcheck disable=SC2012  # names are plain version numbers
    ver=$(ls /usr/lib/postgresql | sort -n | tail -n 1)   # newest installed major
    [[ -n $ver ]] || die "postgres: no server under /usr/lib/postgresql"
    [[ -d /etc/postgresql/$ver/main ]] || pg_createcluster "$ver" main >/dev/null
    # --skip-systemctl-redirect: no systemd here; status exits 3 when stopped
    if ! pg_ctlcluster "$ver" main status >/dev/null 2>&1; then
        pg_ctlcluster --skip-systemctl-redirect "$ver" main start
    fi
    wait_for postgres 60 "/var/log/postgresql/postgresql-$ver-main.log" pg_isready -q -h 127.0.0.1
    if [[ $(psql_pg -c "SELECT 1 FROM pg_roles WHERE rolname = 'longshore'") != 1 ]]; then
        psql_pg -c "CREATE ROLE longshore LOGIN CREATEDB PASSWORD 'longshore'"
    fi
    if [[ $(psql_pg -c "SELECT 1 FROM pg_database WHERE datname = 'longshore'") != 1 ]]; then
        psql_pg -c "CREATE DATABASE longshore OWNER longshore"
    fi
}

# registry_config DIR ADDR [HTPASSWD]: write DIR/config.yml, storage in DIR/data; basic auth when HTPASSWD is given
registry_config() {
    local dir=$1 addr=$2 htpasswd=${3:-}
    mkdir -p "$dir/data"
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $addr
EOF
    [[ -z $htpasswd ]] || printf 'auth:\n  htpasswd:\n    realm: longshore-test\n    path: %s\n' "$htpasswd" >>"$dir/config.yml"
}

start_registry() {
    need /usr/bin/docker-registry docker-registry
    curl -fsS -m 2 http://127.0.0.1:5000/v2/ >/dev/null 2>&1 && return 0
    # our own config: the packaged one asks for htpasswd auth
    registry_config "$REGISTRY_DIR" 127.0.0.1:5000
    (setsid nohup docker-registry serve "$REGISTRY_DIR/config.yml" >"$REGISTRY_DIR/registry.log" 2>&1 &)
    wait_for registry 30 "$REGISTRY_DIR/registry.log" curl -fsS -m 2 http://127.0.0.1:5000/v2/
}

# up, with auth on: it answers 401 to a request without credentials
registry_auth_up() { [[ $(curl -sS -o /dev/null -w '%{http_code}' -m 2 http://127.0.0.1:5001/v2/) == 401 ]]; }

start_registry_auth() {
    need /usr/bin/docker-registry docker-registry
    need /usr/bin/htpasswd apache2-utils
    registry_auth_up 2>/dev/null && return 0
    registry_config "$REGISTRY_AUTH_DIR" 127.0.0.1:5001 "$REGISTRY_AUTH_DIR/htpasswd"
    htpasswd -Bbn "$REGISTRY_AUTH_USER" "$REGISTRY_AUTH_PASSWORD" >"$REGISTRY_AUTH_DIR/htpasswd"
    # A name of its own (argv[0]): the fault tests stop the plain registry with `pkill -f "docker-registry serve"`.
    (setsid nohup bash -c 'exec -a longshore-registry-auth docker-registry serve "$1"' _ "$REGISTRY_AUTH_DIR/config.yml" \
        >"$REGISTRY_AUTH_DIR/registry.log" 2>&1 &)
    wait_for registry-auth 30 "$REGISTRY_AUTH_DIR/registry.log" registry_auth_up
}

# gVisor's runsc as a runtime of the first engine. Runtimes reload on SIGHUP, without a restart.
# `--network=none`: here runsc cannot set up networking in the engine's namespace, and jobs have none.
start_runsc() {
    start_docker
    need /usr/bin/runsc runsc
    docker info --format '{{json .Runtimes}}' | grep -q '"runsc"' && return 0
    mkdir -p /etc/docker
    python3 - /etc/docker/daemon.json <<'PY'
import json, sys
path = sys.argv[1]
try:
    config = json.load(open(path))
except FileNotFoundError:
    config = {}
config.setdefault("runtimes", {})["runsc"] = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}
json.dump(config, open(path, "w"), indent=2)
PY
    kill -HUP "$(cat /var/run/docker.pid)"
    wait_for runsc 20 /tmp/longshore-dockerd.log sh -c "docker info --format '{{json .Runtimes}}' | grep -q runsc"
}

start_prometheus() {
    need /usr/bin/promtool prometheus
}

services=("$@")
[[ ${#services[@]} -gt 0 ]] || services=(docker rabbitmq postgres registry)
for s in "${services[@]}"; do
    case $s in
        docker | docker2 | rabbitmq | postgres | registry | registry-auth | prometheus | runsc) ;;
        *) die "unknown service '$s' (expected docker docker2 rabbitmq postgres registry registry-auth prometheus runsc)" ;;
    esac
done

ready=()
for s in "${services[@]}"; do
    t0=$SECONDS
    "start_${s//-/_}"
    ready+=("$s ready ($((SECONDS - t0))s)")
done
printf '%s\n' "${ready[@]}"
