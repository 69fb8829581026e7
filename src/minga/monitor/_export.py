"""Shipping logs and spans to the engines that hold them beyond one machine.

- Logs go to OpenSearch or Elasticsearch through the bulk API (``POST <url>/_bulk``,
  ``application/x-ndjson``), one ``create`` action per line, documents in Elastic Common Schema
  field names (``@timestamp``, ``message``, ``log.level``, ``service.name``, ``trace.id``...).
- Spans go to an OTLP/HTTP collector as JSON (``POST <url>/v1/traces``): resource spans per
  service, hex trace and span ids, times in Unix nanoseconds as strings.

The payload builders are pure functions; :class:`OpenSearchExporter` and :class:`OtlpExporter`
send them and raise :class:`~minga.errors.MonitorError` when the other side refuses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp

from minga._version import __version__
from minga.bus import Span
from minga.errors import MonitorError
from minga.monitor._logs import LogRecord

__all__ = ["OpenSearchExporter", "OtlpExporter", "bulk_body", "ecs_document", "otlp_body"]

ECS_VERSION = "8.11.0"

# OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer
_KINDS = {"rpc": 2, "http": 2, "gateway": 2, "event": 5, "queue": 5, "timer": 1}


def ecs_document(record: LogRecord) -> dict[str, Any]:
    """One log line as an ECS document."""
    doc: dict[str, Any] = {
        "@timestamp": datetime.fromtimestamp(record.ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "message": record.message,
        "ecs": {"version": ECS_VERSION},
        "log": {"level": record.level, "logger": record.logger or None},
        "service": {"name": record.service, "node": {"name": record.instance}},
        "event": {"dataset": f"{record.service}.log"},
    }
    if record.trace_id:
        doc["trace"] = {"id": record.trace_id}
    fields = dict(record.fields or {})
    error = fields.pop("error", None)
    if error:
        doc["error"] = {"stack_trace": str(error), "message": str(error).strip().splitlines()[-1][:1000]}
    if fields:
        doc["minga"] = {"fields": fields}
    return doc


def bulk_body(records: Iterable[LogRecord], index: str) -> bytes:
    """The NDJSON body of a bulk request: an action line and a document line per record, then a newline."""
    action = json.dumps({"create": {"_index": index}})
    lines = []
    for record in records:
        lines.append(action)
        lines.append(json.dumps(ecs_document(record), default=str))
    return ("\n".join(lines) + "\n").encode()


def _attr(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def otlp_body(spans: Sequence[Span]) -> dict[str, Any]:
    """An OTLP ``ExportTraceServiceRequest`` in its JSON form, spans grouped by service and instance."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in spans:
        span: dict[str, Any] = {
            "traceId": s.trace_id,
            "spanId": s.span_id,
            "name": s.name,
            "kind": _KINDS.get(s.kind, 1),
            "startTimeUnixNano": str(int(s.start * 1e9)),
            "endTimeUnixNano": str(int(s.end * 1e9)),
            "attributes": [_attr("minga.kind", s.kind)] + [_attr(k, v) for k, v in sorted(s.attributes.items())],
            "status": {"code": 2, "message": s.attributes.get("error", "")} if s.status == "error" else {"code": 1},
        }
        if s.parent_id:
            span["parentSpanId"] = s.parent_id
        groups.setdefault((s.service, s.instance), []).append(span)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attr("service.name", service), _attr("service.instance.id", instance)]},
                "scopeSpans": [{"scope": {"name": "minga", "version": __version__}, "spans": items}],
            }
            for (service, instance), items in groups.items()
        ]
    }


async def _post(
    session: aiohttp.ClientSession, url: str, *, who: str, what: str, where: str, **request: Any
) -> str:
    """POST to ``url`` (``request``: aiohttp's arguments, its ``timeout`` included); the response's text.

    Raises MonitorError naming ``who`` when it answers other than 200, and saying that ``what``
    could not be shipped to ``where`` when the request fails or times out.
    """
    try:
        async with session.post(url, **request) as resp:
            text = await resp.text()
            if resp.status != 200:
                raise MonitorError(f"{who} answered {resp.status}: {text[:300]}")
            return text
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise MonitorError(f"cannot ship {what} to {where}: {exc or type(exc).__name__}") from None


class OpenSearchExporter:
    """Sends log lines to ``url``'s bulk API into ``index``; ``timeout`` in seconds."""

    def __init__(self, url: str, index: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.index = index
        self.timeout = timeout

    async def send(self, session: aiohttp.ClientSession, records: Sequence[LogRecord]) -> int:
        """Index ``records``; the number accepted. MonitorError when the request fails outright or
        any document is refused (with the first reason)."""
        if not records:
            return 0
        text = await _post(
            session,
            f"{self.url}/_bulk",
            who="OpenSearch bulk request",
            what="logs",
            where=self.url,
            data=bulk_body(records, self.index),
            headers={"Content-Type": "application/x-ndjson"},
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise MonitorError(f"cannot ship logs to {self.url}: {exc or type(exc).__name__}") from None
        items = doc.get("items") or []
        failed = [next(iter(i.values())) for i in items if next(iter(i.values())).get("status", 500) >= 300]
        if doc.get("errors") and failed:
            reason = failed[0].get("error", {})
            raise MonitorError(
                f"OpenSearch refused {len(failed)} of {len(records)} log lines: "
                f"{reason.get('type', '')}: {reason.get('reason', reason)}"
            )
        return len(records)


class OtlpExporter:
    """Sends spans to the OTLP/HTTP collector at ``url`` (``<url>/v1/traces``)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        base = url.rstrip("/")
        self.url = base if base.endswith("/v1/traces") else f"{base}/v1/traces"
        self.timeout = timeout

    async def send(self, session: aiohttp.ClientSession, spans: Sequence[Span]) -> int:
        """Export ``spans``; the number the collector accepted (it may reject some: partial success)."""
        if not spans:
            return 0
        text = await _post(
            session,
            self.url,
            who="the OTLP collector",
            what="spans",
            where=self.url,
            json=otlp_body(spans),
            headers={"Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )
        rejected = 0
        try:
            partial = (json.loads(text) if text.strip() else {}).get("partialSuccess") or {}
            rejected = int(partial.get("rejectedSpans") or 0)
        except (ValueError, AttributeError, TypeError):
            pass
        return len(spans) - rejected
