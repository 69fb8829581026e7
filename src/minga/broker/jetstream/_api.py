"""The ``$JS.API.>`` endpoints: JSON requests in, JSON replies out, nats-server's shapes.

Each endpoint is a plain function registered with :func:`endpoint`, which records the
API path and the response type and returns the function unchanged. :func:`dispatch`
finds the endpoint by the longest registered path prefix of the request subject; the
remaining tokens are the endpoint's arguments (stream name, consumer name, subject...).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from minga.broker.jetstream import _errors as E
from minga.broker.jetstream._consumer import PullRequest
from minga.broker.jetstream._headers import header_block, status_block
from minga.broker.jetstream._models import ConsumerConfig, StreamConfig, rfc3339, valid_name
from minga.broker.jetstream._subjects import matches, overlaps
from minga.security import load_json

if TYPE_CHECKING:
    from minga.broker import Delivery
    from minga.broker.jetstream._engine import JetStream

__all__ = ["dispatch", "endpoint"]

Reply = dict[str, Any] | None
Handler = Callable[["JetStream", list[str], "Delivery"], Reply]
H = TypeVar("H", bound=Handler)

_ROUTES: dict[tuple[str, ...], tuple[Handler, str, int]] = {}
API_PREFIX = "$JS.API."


def endpoint(path: str, response: str, args: int) -> Callable[[H], H]:
    """Register ``fn`` for ``$JS.API.<path>`` taking at least ``args`` subject tokens after the path."""

    def record(fn: H) -> H:
        _ROUTES[tuple(path.split("."))] = (fn, response, args)
        return fn

    return record


def dispatch(js: JetStream, d: Delivery) -> Reply:
    """Run the endpoint for the request ``d``; return the reply body (None when it replied itself)."""
    tokens = d.subject[len(API_PREFIX) :].split(".")
    for n in (3, 2, 1):
        route = _ROUTES.get(tuple(tokens[:n]))
        if route is not None:
            fn, response, nargs = route
            args = tokens[n:]
            kind = f"io.nats.jetstream.api.v1.{response}"
            try:
                if len(args) < nargs:
                    raise E.bad_request()
                body = fn(js, args, d)
            except E.ApiError as err:
                return {"type": kind, "error": E.error_json(err)}
            if body is None:
                return None
            return {"type": kind, **body}
    return {"type": "io.nats.jetstream.api.v1.error", "error": E.error_json(E.bad_request())}


def _request(d: Delivery) -> dict[str, Any]:
    text = d.payload.strip()
    if not text:
        return {}
    try:
        req = load_json(text)
    except ValueError as exc:
        raise E.invalid_json(str(exc)) from None
    if not isinstance(req, dict):
        raise E.invalid_json("expected an object")
    return req


def _page(req: dict[str, Any]) -> int:
    offset = req.get("offset") or 0
    return max(0, int(offset)) if isinstance(offset, int) else 0


# -- account -----------------------------------------------------------------------------------


@endpoint("INFO", "account_info_response", 0)
def account_info(js: JetStream, args: list[str], d: Delivery) -> Reply:
    return js.account_info()


# -- streams -----------------------------------------------------------------------------------


@endpoint("STREAM.CREATE", "stream_create_response", 1)
def stream_create(js: JetStream, args: list[str], d: Delivery) -> Reply:
    config = StreamConfig.from_request(_request(d), args[0])
    stream, created = js.create_stream(config)
    info = stream.info_json(time.time_ns())
    if created:
        info["did_create"] = True
    return info


@endpoint("STREAM.UPDATE", "stream_update_response", 1)
def stream_update(js: JetStream, args: list[str], d: Delivery) -> Reply:
    config = StreamConfig.from_request(_request(d), args[0])
    return js.update_stream(config).info_json(time.time_ns())


@endpoint("STREAM.INFO", "stream_info_response", 1)
def stream_info(js: JetStream, args: list[str], d: Delivery) -> Reply:
    stream = js.stream(args[0])
    req = _request(d)
    info = stream.info_json(time.time_ns())
    flt = req.get("subjects_filter")
    if isinstance(flt, str) and flt:
        counts = {
            subj: len(seqs) for subj in sorted(stream.subjects()) if matches(flt, subj) and (seqs := stream.subject_seqs(subj))
        }
        if counts:  # a filter that matches nothing leaves the field out, as nats-server does
            info["state"]["subjects"] = counts
    return info


@endpoint("STREAM.DELETE", "stream_delete_response", 1)
def stream_delete(js: JetStream, args: list[str], d: Delivery) -> Reply:
    js.delete_stream(args[0])
    return {"success": True}


@endpoint("STREAM.PURGE", "stream_purge_response", 1)
def stream_purge(js: JetStream, args: list[str], d: Delivery) -> Reply:
    stream = js.stream(args[0])
    if stream.config.deny_purge:
        raise E.purge_failed("stream purge not permitted")
    req = _request(d)
    purged = stream.purge(str(req.get("filter") or ""), int(req.get("seq") or 0), int(req.get("keep") or 0))
    return {"success": True, "purged": purged}


@endpoint("STREAM.NAMES", "stream_names_response", 0)
def stream_names(js: JetStream, args: list[str], d: Delivery) -> Reply:
    req = _request(d)
    subject = req.get("subject")
    names = sorted(
        name
        for name, s in js.streams.items()
        if not subject or any(overlaps(str(subject), x) for x in s.config.subjects)
    )
    offset = _page(req)
    return {"total": len(names), "offset": offset, "limit": 1024, "streams": names[offset : offset + 1024]}


@endpoint("STREAM.LIST", "stream_list_response", 0)
def stream_list(js: JetStream, args: list[str], d: Delivery) -> Reply:
    req = _request(d)
    now = time.time_ns()
    names = sorted(js.streams)
    offset = _page(req)
    infos = [js.streams[n].info_json(now) for n in names[offset : offset + 256]]
    return {"total": len(names), "offset": offset, "limit": 256, "streams": infos}


def _find_message(js: JetStream, stream_name: str, req: dict[str, Any]) -> Any:
    stream = js.stream(stream_name)
    seq = int(req.get("seq") or 0)
    last_by = req.get("last_by_subj")
    next_by = req.get("next_by_subj")
    if last_by:
        msg = stream.last_for_subject(str(last_by))
    elif next_by:
        msg = stream.next_matching(max(seq, 1), [str(next_by)])
    elif seq:
        msg = stream.store.get(seq)
    else:
        raise E.bad_request()
    if msg is None:
        raise E.no_message_found()
    return msg


@endpoint("STREAM.MSG.GET", "stream_msg_get_response", 1)
def stream_msg_get(js: JetStream, args: list[str], d: Delivery) -> Reply:
    msg = _find_message(js, args[0], _request(d))
    body: dict[str, Any] = {"subject": msg.subject, "seq": msg.seq, "time": rfc3339(msg.time_ns)}
    if msg.headers:
        body["hdrs"] = base64.b64encode(msg.headers).decode()
    if msg.payload:
        body["data"] = base64.b64encode(msg.payload).decode()
    return {"message": body}


@endpoint("STREAM.MSG.DELETE", "stream_msg_delete_response", 1)
def stream_msg_delete(js: JetStream, args: list[str], d: Delivery) -> Reply:
    stream = js.stream(args[0])
    if stream.config.deny_delete:
        raise E.msg_delete_failed("message delete not permitted")
    seq = int(_request(d).get("seq") or 0)
    if not stream.remove([seq]):
        raise E.msg_delete_failed("no message found")
    return {"success": True}


@endpoint("DIRECT.GET", "direct_get", 1)
def direct_get(js: JetStream, args: list[str], d: Delivery) -> Reply:
    """Reply with the message itself (headers say where it came from), or a 404 status.

    A stream that does not exist or does not allow direct gets has no direct-get responder in
    nats-server, so the request goes unanswered and the client times out; so it does here.
    """
    reply = d.reply
    assert reply is not None
    stream = js.streams.get(args[0])
    if stream is None or not stream.config.allow_direct:
        return None
    try:
        if len(args) > 1:
            req: dict[str, Any] = {"last_by_subj": ".".join(args[1:])}
        else:
            req = _request(d)
        msg = _find_message(js, args[0], req)
    except E.ApiError as err:
        code, text = (404, "Message Not Found") if err.code == 404 else (err.code, err.description)
        js.broker.publish_internal(reply, b"", headers=status_block(code, text))
        return None
    headers = header_block(
        {
            "Nats-Stream": args[0],
            "Nats-Subject": msg.subject,
            "Nats-Sequence": str(msg.seq),
            "Nats-Time-Stamp": rfc3339(msg.time_ns),
        },
        base=msg.headers,
    )
    js.broker.publish_internal(reply, msg.payload, headers=headers)
    return None


# -- consumers ---------------------------------------------------------------------------------


def _create_consumer(js: JetStream, stream_name: str, name: str | None, filter_subject: str | None, d: Delivery, durable: bool) -> Reply:
    if name is not None and not valid_name(name):
        raise E.consumer_bad_durable()
    req = _request(d)
    if req.get("stream_name") not in (None, "", stream_name):
        raise E.stream_mismatch()
    raw = req.get("config")
    if not isinstance(raw, dict):
        raise E.api_error(400, 10078, "consumer config required")
    config = ConsumerConfig.from_request(raw)
    # which names must agree depends on the endpoint, as in nats-server: DURABLE.CREATE.<stream>.<name>
    # needs the durable name, CREATE.<stream> refuses one, CREATE.<stream>.<name> names the consumer
    if config.durable_name and name is not None and config.durable_name != name:
        raise E.consumer_durable_mismatch()
    if durable:
        if not config.durable_name:
            raise E.consumer_durable_required()
        if config.inactive_threshold and not raw.get("inactive_threshold"):
            config.inactive_threshold = 0
    elif name is None:
        if config.durable_name:
            raise E.consumer_ephemeral_with_durable()
    else:
        config.name = name
    if filter_subject and config.filter_subject != filter_subject:
        raise E.consumer_filter_mismatch()
    stream = js.stream(stream_name)
    consumer = js.create_consumer(stream, name, config, str(req.get("action") or ""))
    return consumer.info_json(time.time_ns(), js.push_bound(consumer))


@endpoint("CONSUMER.CREATE", "consumer_create_response", 1)
def consumer_create(js: JetStream, args: list[str], d: Delivery) -> Reply:
    name = args[1] if len(args) > 1 else None
    flt = ".".join(args[2:]) if len(args) > 2 else None
    return _create_consumer(js, args[0], name, flt, d, durable=False)


@endpoint("CONSUMER.DURABLE.CREATE", "consumer_create_response", 2)
def consumer_durable_create(js: JetStream, args: list[str], d: Delivery) -> Reply:
    return _create_consumer(js, args[0], args[1], None, d, durable=True)


@endpoint("CONSUMER.INFO", "consumer_info_response", 2)
def consumer_info(js: JetStream, args: list[str], d: Delivery) -> Reply:
    c = js.consumer(js.stream(args[0]), args[1])
    return c.info_json(time.time_ns(), js.push_bound(c))


@endpoint("CONSUMER.DELETE", "consumer_delete_response", 2)
def consumer_delete(js: JetStream, args: list[str], d: Delivery) -> Reply:
    js.delete_consumer(js.stream(args[0]), args[1])
    return {"success": True}


@endpoint("CONSUMER.NAMES", "consumer_names_response", 1)
def consumer_names(js: JetStream, args: list[str], d: Delivery) -> Reply:
    stream = js.stream(args[0])
    names = sorted(stream.consumers)
    offset = _page(_request(d))
    return {"total": len(names), "offset": offset, "limit": 1024, "consumers": names[offset : offset + 1024]}


@endpoint("CONSUMER.LIST", "consumer_list_response", 1)
def consumer_list(js: JetStream, args: list[str], d: Delivery) -> Reply:
    stream = js.stream(args[0])
    now = time.time_ns()
    names = sorted(stream.consumers)
    offset = _page(_request(d))
    infos = [stream.consumers[n].info_json(now, js.push_bound(stream.consumers[n])) for n in names[offset : offset + 256]]
    return {"total": len(names), "offset": offset, "limit": 256, "consumers": infos}


@endpoint("CONSUMER.MSG.NEXT", "consumer_getnext_response", 2)
def consumer_next(js: JetStream, args: list[str], d: Delivery) -> Reply:
    """A pull request: messages go to the request's reply subject; errors go there as status messages."""
    reply = d.reply
    assert reply is not None
    stream = js.streams.get(args[0])
    c = stream.consumers.get(args[1]) if stream is not None else None
    if c is None:
        js.broker.publish_internal(reply, b"", headers=status_block(404, "Consumer Not Found" if stream else "Stream Not Found"))
        return None
    if c.config.is_push:
        js.broker.publish_internal(reply, b"", headers=status_block(409, "Consumer is push based"))
        return None
    text = d.payload.strip()
    batch, expires, no_wait, max_bytes, heartbeat = 1, 0, False, 0, 0
    if text.isdigit():
        batch = int(text)
    elif text:
        try:
            req = load_json(text)
        except ValueError:
            js.broker.publish_internal(reply, b"", headers=status_block(400, "Bad Request"))
            return None
        batch = int(req.get("batch") or 1)
        expires = int(req.get("expires") or 0)
        no_wait = bool(req.get("no_wait"))
        max_bytes = int(req.get("max_bytes") or 0)
        heartbeat = int(req.get("idle_heartbeat") or 0)
    if heartbeat > 0 and (expires <= 0 or heartbeat * 2 > expires):
        js.broker.publish_internal(reply, b"", headers=status_block(400, "Bad Request - heartbeat value too large"))
        return None
    now = time.time_ns()
    request = PullRequest(reply, max(batch, 1), now + expires if expires > 0 else 0, no_wait, max_bytes, heartbeat)
    request.last_sent = now
    js.pull(c, request)
    return None
