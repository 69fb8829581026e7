"""The JSON Schema of minga.yaml, generated from the models (``minga schema`` prints it).

The models normalise shorthands before validating (``broker: embedded``, ``command: "python
app.py"``, ``depends_on: [db]``, ``ports: [http]``); the generated schema is widened here so
that editors accept every form the loader accepts.
"""

from __future__ import annotations

from typing import Any

from minga.spec._models import NAME_PATTERN, Spec

SCHEMA_ID = "https://minga.dev/schema/minga.yaml.json"

_STRINGS = {"type": "array", "items": {"type": "string"}}


def _widen(prop: dict[str, Any], *alternatives: dict[str, Any]) -> dict[str, Any]:
    keep = {k: v for k, v in prop.items() if k in ("title", "description", "default")}
    base = {k: v for k, v in prop.items() if k not in keep}
    options = base["anyOf"] if list(base) == ["anyOf"] else [base]
    return {**keep, "anyOf": [*options, *alternatives]}


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that editors can use to check and complete minga.yaml.

    It checks the shape of each field; the cross-service checks (unknown ``depends_on``
    targets, cycles, fixed ports with several replicas) are made by
    :func:`~minga.spec.load_spec` only.
    """
    schema = Spec.model_json_schema(mode="validation")
    defs = schema["$defs"]
    svc = defs["ServiceSpec"]["properties"]
    svc["command"] = _widen(svc["command"], {"type": "string", "minLength": 1})
    svc["ports"] = _widen(svc["ports"], _STRINGS)
    svc["depends_on"]["additionalProperties"] = {
        "anyOf": [{"$ref": "#/$defs/DependsOnSpec"}, {"type": "null"}]
    }
    svc["depends_on"] = _widen(svc["depends_on"], _STRINGS)
    svc["env"]["additionalProperties"] = {"type": ["string", "number", "boolean"]}
    top = schema["properties"]
    top["services"]["additionalProperties"] = {"anyOf": [{"$ref": "#/$defs/ServiceSpec"}, {"type": "null"}]}
    top["services"]["propertyNames"] = {"pattern": NAME_PATTERN}
    top["broker"] = _widen(
        top["broker"], {"const": "embedded"}, {"type": "string", "pattern": r"^(nats|tls)://"}
    )
    top["discovery"] = _widen(
        top["discovery"], {"const": "embedded"}, {"type": "string", "pattern": r"^https?://"}
    )
    gateway = defs["GatewaySpec"]["properties"]
    gateway["listen"] = {
        "anyOf": [{"type": "integer", "minimum": 0, "maximum": 65535}, {"type": "string", "pattern": r"^(.+:)?\d+$"}],
        "description": 'shorthand for host and port: "127.0.0.1:8080" or a port',
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "minga.yaml",
    }
