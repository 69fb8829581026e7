"""JetStream API errors with nats-server's status codes, error codes and descriptions.

Only the subset this broker can produce is listed; the numbers and texts are the ones
nats-server puts in the ``error`` object of an API response, so clients map them to the
same exceptions (nats-py raises ``NotFoundError`` for 404, ``BadRequestError`` for 400...).
"""

from __future__ import annotations

from typing import Any

from minga.errors import JetStreamError

__all__ = ["ApiError", "api_error", "error_json"]

# every API error is a JetStreamError (minga.errors); the short name reads better at the raise sites
ApiError = JetStreamError


def error_json(err: JetStreamError) -> dict[str, Any]:
    """The ``error`` object of an API reply: ``{"code", "err_code", "description"}``."""
    return {"code": err.code, "err_code": err.err_code, "description": err.description}


def api_error(code: int, err_code: int, description: str) -> JetStreamError:
    return JetStreamError(code, err_code, description)


def bad_request() -> JetStreamError:
    return api_error(400, 10003, "bad request")


def invalid_json(detail: str) -> JetStreamError:
    return api_error(400, 10025, f"invalid JSON: {detail}")


def stream_not_found() -> JetStreamError:
    return api_error(404, 10059, "stream not found")


def consumer_not_found() -> JetStreamError:
    return api_error(404, 10014, "consumer not found")


def no_message_found() -> JetStreamError:
    return api_error(404, 10037, "no message found")


def stream_name_exists() -> JetStreamError:
    return api_error(400, 10058, "stream name already in use with a different configuration")


def stream_subject_overlap() -> JetStreamError:
    return api_error(400, 10065, "subjects overlap with an existing stream")


def stream_mismatch() -> JetStreamError:
    return api_error(400, 10056, "stream name in subject does not match request")


def stream_invalid_config(detail: str) -> JetStreamError:
    return api_error(500, 10052, detail)


def stream_not_match() -> JetStreamError:
    return api_error(400, 10060, "expected stream does not match")


def wrong_last_sequence(seq: int) -> JetStreamError:
    return api_error(400, 10071, f"wrong last sequence: {seq}")


def wrong_last_msg_id(msg_id: str) -> JetStreamError:
    return api_error(400, 10070, f"wrong last msg ID: {msg_id}")


def message_too_big() -> JetStreamError:
    return api_error(400, 10054, "message size exceeds maximum allowed")


def store_failed(detail: str) -> JetStreamError:
    return api_error(503, 10077, detail)


def rollup_failed(detail: str) -> JetStreamError:
    return api_error(500, 10111, detail)


def msg_delete_failed(detail: str) -> JetStreamError:
    return api_error(500, 10057, detail)


def purge_failed(detail: str) -> JetStreamError:
    return api_error(500, 10110, detail)


def consumer_create_failed(detail: str) -> JetStreamError:
    return api_error(500, 10012, detail)


def consumer_name_exists() -> JetStreamError:
    return api_error(400, 10013, "consumer name already in use")


def consumer_already_exists() -> JetStreamError:
    return api_error(400, 10148, "consumer already exists")


def consumer_durable_mismatch() -> JetStreamError:
    return api_error(400, 10017, "consumer name in subject does not match durable name in request")


def consumer_ephemeral_with_durable() -> JetStreamError:
    return api_error(400, 10020, "consumer expected to be ephemeral but a durable name was set in request")


def consumer_durable_required() -> JetStreamError:
    return api_error(400, 10018, "consumer expected to be durable but a durable name was not set")


def consumer_fc_requires_heartbeat() -> JetStreamError:
    return api_error(400, 10108, "consumer with flow control also needs heartbeats")


def consumer_filter_mismatch() -> JetStreamError:
    return api_error(400, 10131, "Consumer create request did not match filtered subject from create subject")


def consumer_bad_durable() -> JetStreamError:
    return api_error(400, 10103, "durable name can not contain '.', '*', '>', whitespace or control characters")


def consumer_wq_requires_explicit_ack() -> JetStreamError:
    return api_error(400, 10098, "workqueue stream requires explicit ack")


def consumer_wq_multiple_unfiltered() -> JetStreamError:
    return api_error(400, 10099, "multiple non-filtered consumers not allowed on workqueue stream")


def consumer_wq_not_unique() -> JetStreamError:
    return api_error(400, 10100, "filtered consumer not unique on workqueue stream")


def consumer_wq_deliver_all() -> JetStreamError:
    return api_error(400, 10101, "consumer must be deliver all on workqueue stream")


def consumer_invalid_policy(detail: str) -> JetStreamError:
    return api_error(400, 10094, detail)


def consumer_push_max_waiting() -> JetStreamError:
    return api_error(400, 10080, "consumer in push mode can not set max waiting")


def consumer_deliver_wildcards() -> JetStreamError:
    return api_error(400, 10079, "consumer deliver subject has wildcards")


def consumer_max_pending_requires_ack() -> JetStreamError:
    return api_error(400, 10082, "consumer requires ack policy for max ack pending")


def consumer_filter_not_subset() -> JetStreamError:
    return api_error(400, 10093, "consumer filter subject is not a valid subset of the interest subjects")


def consumer_hb_requires_push() -> JetStreamError:
    return api_error(400, 10088, "consumer idle heartbeat requires a push based consumer")


def consumer_fc_requires_push() -> JetStreamError:
    return api_error(400, 10089, "consumer flow control requires a push based consumer")


def maximum_consumers() -> JetStreamError:
    return api_error(400, 10026, "maximum consumers limit reached")
