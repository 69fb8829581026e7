from __future__ import annotations

import minga.errors as errors
from minga.errors import JetStreamError, MingaError, RemoteError, SpecError


def test_every_error_has_the_one_root() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, MingaError), name


def test_every_error_is_drawn_in_the_tree() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in doc, f"{name} is missing from the tree in minga.errors' docstring"


def test_spec_error_points_at_the_place() -> None:
    err = SpecError("replicas must be >= 0, found -1", path="minga.yaml", line=4, column=15)
    assert str(err) == "minga.yaml:4:15: replicas must be >= 0, found -1"
    assert (err.line, err.column) == (4, 15)


def test_typed_fields() -> None:
    js = JetStreamError(404, 10059, "stream not found")
    assert js.err_code == 10059 and "stream not found" in str(js)
    remote = RemoteError("ValueError", "bad sku")
    assert str(remote) == "ValueError: bad sku"
