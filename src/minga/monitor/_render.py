"""Configuration for the engines that monitor beyond one machine: a prometheus.yml that finds
minga's replicas through the registry's ``http_sd`` endpoint, and a Grafana dashboard with the
panels of minga's own dashboard (:func:`standard_panels`, one list for both)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Panel", "render_grafana", "render_prometheus", "standard_panels"]


@dataclass(frozen=True, slots=True)
class Panel:
    """A chart: ``query`` in the monitor's PromQL subset (valid PromQL too); ``$service`` is the
    service shown; ``unit`` is Grafana's unit name (``reqps``, ``percentunit``, ``s``, ``bytes``...)."""

    title: str
    query: str
    unit: str
    legend: str = "{{service}}"

    def for_service(self, service: str | None = None) -> str:
        """The query for one service (None: every service), ready for the monitor's engine."""
        return self.query.replace("$service", re.escape(service) if service else ".*")


_PANELS: tuple[Panel, ...] = (
    Panel("Requests per second", 'sum by (service) (rate(minga_entrypoint_calls_total{service=~"$service"}[1m]))', "reqps"),
    Panel(
        "Errors (share of calls)",
        'sum by (service) (rate(minga_entrypoint_calls_total{service=~"$service",outcome="error"}[1m]))'
        ' / sum by (service) (rate(minga_entrypoint_calls_total{service=~"$service"}[1m]))',
        "percentunit",
    ),
    Panel(
        "Latency p50",
        'histogram_quantile(0.5, sum by (service, le) (rate(minga_entrypoint_duration_seconds_bucket{service=~"$service"}[1m])))',
        "s",
    ),
    Panel(
        "Latency p95",
        'histogram_quantile(0.95, sum by (service, le) (rate(minga_entrypoint_duration_seconds_bucket{service=~"$service"}[1m])))',
        "s",
    ),
    Panel(
        "Latency p99",
        'histogram_quantile(0.99, sum by (service, le) (rate(minga_entrypoint_duration_seconds_bucket{service=~"$service"}[1m])))',
        "s",
    ),
    Panel("CPU (cores)", 'sum by (service) (rate(process_cpu_seconds_total{service=~"$service"}[1m]))', "none"),
    Panel("Memory (RSS)", 'sum by (service) (process_resident_memory_bytes{service=~"$service"})', "bytes"),
    Panel("Event-loop lag", 'max by (service) (minga_event_loop_lag_seconds{service=~"$service"})', "s"),
    Panel("Queue depth", 'max by (queue) (minga_queue_pending{service=~"$service"})', "none", "{{queue}}"),
    Panel("Replicas up", 'sum by (service) (up{service=~"$service"})', "none"),
)


def standard_panels() -> tuple[Panel, ...]:
    """The charts of a service: requests/s, error share, p50/p95/p99, CPU, memory, loop lag, queue depth, up."""
    return _PANELS


def render_prometheus(
    discovery_url: str, *, scrape_interval: float = 5.0, job: str = "minga", token_file: Path | None = None
) -> str:
    """A prometheus.yml scraping every replica the registry at ``discovery_url`` lists.

    ``discovery_url`` is the control plane's ``/v1/discovery`` (or the control plane itself);
    ``token_file`` holds the token Prometheus shows it (``Authorization: Bearer``).
    Targets keep minga's ``service`` label, ``instance`` becomes the replica's id, and Prometheus's
    ``job`` label is dropped, so each series has the labels it has in minga and the same queries
    give the same answers in Prometheus and in minga.
    """
    base = discovery_url.rstrip("/")
    if not base.endswith("/v1/discovery"):
        base += "/v1/discovery"
    interval = f"{scrape_interval:g}s"
    http_sd: dict[str, Any] = {"url": f"{base}/http_sd", "refresh_interval": interval}
    if token_file is not None:
        http_sd["authorization"] = {"type": "Bearer", "credentials_file": str(token_file)}
    doc: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "http_sd_configs": [http_sd],
                "relabel_configs": [
                    {"source_labels": ["__meta_minga_instance"], "target_label": "instance"},
                    {"source_labels": ["__meta_minga_version"], "target_label": "version"},
                    {"regex": "instance_id", "action": "labeldrop"},
                    # minga's own series have no `job`: without it a series is labelled the same in both
                    {"regex": "job", "action": "labeldrop"},
                ],
            }
        ],
    }
    header = "# Rendered by `minga monitor render prometheus`: scrapes what minga's registry lists.\n"
    return header + yaml.safe_dump(doc, sort_keys=False)


def render_grafana(title: str = "minga", *, datasource: str = "prometheus") -> str:
    """A Grafana dashboard (JSON model) with :func:`standard_panels`, a ``service`` variable and a Prometheus
    data source chosen on import (``datasource`` is the variable's default)."""
    ds = {"type": "prometheus", "uid": "${datasource}"}
    panels = []
    for i, panel in enumerate(_PANELS):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": panel.title,
                "datasource": ds,
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [{"refId": "A", "datasource": ds, "expr": panel.query, "legendFormat": panel.legend}],
            }
        )
    dashboard = {
        "title": title,
        "uid": f"minga-{title}"[:40],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "10s",
        "tags": ["minga"],
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "current": {"text": datasource, "value": datasource}},
                {
                    "name": "service",
                    "type": "query",
                    "datasource": ds,
                    "query": {"query": "label_values(minga_entrypoint_calls_total, service)", "refId": "service"},
                    "definition": "label_values(minga_entrypoint_calls_total, service)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                    "refresh": 2,
                },
            ]
        },
        "panels": panels,
    }
    return json.dumps(dashboard, indent=2) + "\n"
