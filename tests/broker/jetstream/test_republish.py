"""Republish mappings as pure functions: which subject a stored message goes to, and what is refused."""

from __future__ import annotations

import pytest

from minga.broker.jetstream._models import StreamConfig
from minga.broker.jetstream._republish import Republish
from minga.errors import JetStreamError


def test_mapping_uses_the_source_wildcards() -> None:
    rp = Republish.from_request({"src": "orders.*.*", "dest": "copy.$2.{{ wildcard(1) }}"}, ["orders.>"])
    assert rp.subject_for("orders.eu.new") == "copy.new.eu"
    assert rp.subject_for("orders.eu") is None
    tail = Republish.from_request({"dest": "out.>"}, ["a.>"])
    assert tail.subject_for("a.b.c") == "out.a.b.c"
    assert Republish.from_request({"src": "a.x", "dest": "fixed"}, ["a.>"]).subject_for("a.x") == "fixed"


def test_message_headers_and_headers_only() -> None:
    rp = Republish.from_request({"dest": "out.>", "headers_only": True}, ["a"])
    out = rp.message("S", "a", 7, 3, b"NATS/1.0\r\nX: 1\r\n\r\n", b"hello")
    assert out is not None
    subject, headers, payload = out
    assert (subject, payload) == ("out.a", b"")
    assert headers == (
        b"NATS/1.0\r\nX: 1\r\nNats-Stream: S\r\nNats-Subject: a\r\nNats-Sequence: 7\r\n"
        b"Nats-Last-Sequence: 3\r\nNats-Msg-Size: 5\r\n\r\n"
    )
    assert rp.message("S", "a.*", 8, 0, None, b"") is None  # a wildcard publish is not republished


@pytest.mark.parametrize(
    "raw",
    [
        {"src": "a.*", "dest": "out.fixed"},  # a source wildcard left unused
        {"src": "a.*", "dest": "out.*"},  # a plain wildcard is no mapping
        {"src": "a.*", "dest": "out.>"},  # ">" without one in the source
        {"src": "a.*", "dest": "out.$2"},  # no second wildcard
        {"src": "a.>", "dest": "a.x.>"},  # stored again: a cycle
        {"src": "b.>", "dest": "out.>"},  # outside the stream
        {"src": "a.*", "dest": "out.{{partition(3,1)}}"},  # a mapping function not offered
    ],
)
def test_refused(raw: dict[str, str]) -> None:
    with pytest.raises(JetStreamError) as err:
        Republish.from_request(raw, ["a.>"])
    assert (err.value.code, err.value.err_code) == (500, 10052)


def test_configuration_round_trips_through_the_saved_form() -> None:
    config = StreamConfig.from_request({"name": "S", "subjects": ["a.>"], "republish": {"src": "a.*", "dest": "b.$1"}})
    again = StreamConfig.from_json(config.to_json())
    assert again == config and again.republish is not None
    assert again.to_json()["republish"] == {"src": "a.*", "dest": "b.$1"}
