"""Metrics for Prometheus: a worker's own (`metrics`), and the installation's (`exporter`)."""
