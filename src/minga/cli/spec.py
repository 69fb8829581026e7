"""``minga schema`` and ``minga check``: the spec's JSON Schema, and validating a minga.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from minga.spec import json_schema, load_spec


def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write the schema to this file instead of stdout")
    ] = None,
) -> None:
    """Print the JSON Schema of minga.yaml (for editors and CI checks)."""
    text = json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


def check(
    file: Annotated[Path, typer.Option("--file", "-f", help="the spec to check")] = Path("minga.yaml"),
) -> None:
    """Validate a minga.yaml; every mistake is printed as file:line:column."""
    spec = load_spec(file)
    replicas = sum(s.replicas for s in spec.services.values())
    typer.echo(f"{file}: ok, {len(spec.services)} service(s), {replicas} replica(s)")
