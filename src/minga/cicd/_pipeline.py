"""``.minga/pipeline.yaml``: the stages and steps a commit goes through.

```yaml
stages:
  - name: test
    steps:
      - name: unit
        run: python -m pytest -q
        timeout: 10m
  - name: build
    steps:
      - name: wheel
        run: pip wheel --no-deps -w dist .
        artifacts: [dist/*.whl]
        env: {PIP_INDEX_URL: {secret: pypi-mirror}}
```

Stages run in order, the steps of a stage in order; the first step that fails (a non-zero exit,
or past its timeout) ends the run, and nothing after it runs. Mistakes in the file are reported
as minga.yaml's are, at ``file:line:column``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from minga.errors import SpecError
from minga.spec import Duration, parse_model

__all__ = ["PIPELINE_FILE", "Pipeline", "Stage", "Step", "load_pipeline"]

PIPELINE_FILE = ".minga/pipeline.yaml"
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SECRET_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _text_values(value: Any) -> Any:
    """Numbers and booleans in ``env`` become the text a shell would see."""
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, int | float):
            out[key] = str(item)
        else:
            out[key] = item
    return out


class Step(_Strict):
    """One shell command, run with ``bash -eo pipefail -c`` in the commit's clean checkout."""

    name: str = Field(pattern=NAME)
    run: str = Field(min_length=1, description="a shell command (bash)")
    timeout: Duration = Field(default=600.0, gt=0, description="seconds before the step is killed")
    env: Annotated[dict[str, str], BeforeValidator(_text_values)] = Field(default_factory=dict)
    secrets: dict[str, Annotated[str, Field(pattern=SECRET_NAME)]] = Field(
        default_factory=dict, description="variable -> secret name; written in env as `VAR: {secret: NAME}`"
    )
    artifacts: list[str] = Field(
        default_factory=list, description="globs, relative to the checkout, kept by digest"
    )

    @model_validator(mode="before")
    @classmethod
    def _secret_refs(cls, value: Any) -> Any:
        """``env: {VAR: {secret: NAME}}`` moves to ``secrets``: values stay out of the file."""
        if not isinstance(value, dict) or not isinstance(value.get("env"), dict):
            return value
        env, secrets = {}, dict(value.get("secrets") or {})
        for key, item in value["env"].items():
            if isinstance(item, dict) and set(item) == {"secret"}:
                secrets[key] = item["secret"]
            else:
                env[key] = item
        return {**value, "env": env, "secrets": secrets}


class Stage(_Strict):
    name: str = Field(pattern=NAME)
    steps: list[Step] = Field(min_length=1)


class Pipeline(_Strict):
    """A pipeline: its stages, in order. Every step finds ``$MINGA_CACHE``, a directory kept
    between runs of the same branch, and ``$MINGA_COMMIT`` and ``$MINGA_REF``."""

    stages: list[Stage] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Pipeline:
        seen: set[tuple[str, str]] = set()
        for stage in self.stages:
            for step in stage.steps:
                if (stage.name, step.name) in seen:
                    raise ValueError(
                        f"step {stage.name}/{step.name} is named twice: give each step its own name"
                    )
                seen.add((stage.name, step.name))
        return self


def load_pipeline(checkout: Path) -> Pipeline:
    """The pipeline of a checkout; SpecError (file:line:column) when missing or wrong."""
    path = checkout / PIPELINE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(
            f"found no {PIPELINE_FILE} in the commit, expected one (see docs/delivery.md)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read {PIPELINE_FILE}: {exc}") from None
    return parse_model(text, Pipeline, PIPELINE_FILE)
