"""Reading minga.yaml: YAML nodes with their marks -> plain data -> :class:`Spec`.

Every mistake is reported at its place, as ``file:line:column: path: found X, expected Y``.
The YAML is composed into nodes (which keep their marks) and converted by hand, so that
each value's position can be found again from the location pydantic reports.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from minga.errors import SpecError
from minga.spec._models import Loc, Spec, cross_checks

DEFAULT_SPEC_FILE = "minga.yaml"

_Mark = tuple[int, int]  # 1-based line, column

MAX_VALUES = 20_000
"""How many values (mappings, lists, scalars) a spec may expand to, aliases counted each time
they are used: far beyond any real system, far below what nested aliases (a "billion laughs")
would build."""


class _Refused(Exception):
    """The document cannot be built at all (an alias that contains itself, or too many values)."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.mark = _mark(node)
        self.message = message


class _Document:
    """Plain data built from YAML nodes, with the mark of every value and every mapping key."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.values: dict[Loc, _Mark] = {}
        self.keys: dict[Loc, _Mark] = {}
        self.items: dict[Loc, list[tuple[Any, Loc]]] = {}
        self.problems: list[tuple[_Mark, str]] = []
        self._built = 0
        self._open: set[int] = set()  # the nodes being built, outermost to here

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        """Plain data for ``node``; raises _Refused for an alias inside itself or a bomb."""
        self._built += 1
        if self._built > MAX_VALUES:
            raise _Refused(
                node, f"the document expands to more than {MAX_VALUES:,} values (aliases nested in aliases?)"
            )
        if id(node) in self._open:
            raise _Refused(node, "found an alias that refers to a node containing it, expected a finite document")
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            self._open.add(id(node))
            try:
                return self._build_collection(node, loc)
            finally:
                self._open.discard(id(node))
        self.values[loc] = _mark(node)
        return self.loader.construct_object(node, deep=True)

    def _build_collection(self, node: yaml.MappingNode | yaml.SequenceNode, loc: Loc) -> Any:
        self.values[loc] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            self._flatten(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    kind = "mapping" if isinstance(key_node, yaml.MappingNode) else "list"
                    self.problems.append((_mark(key_node), f"found a {kind} as a key, expected text"))
                    continue
                key = self.loader.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool) or key is None:
                    self.problems.append(
                        (_mark(key_node), f"found a {type(key).__name__} as a key, expected text")
                    )
                    continue
                if isinstance(key, bool | int | float):
                    key = str(key).lower() if isinstance(key, bool) else str(key)
                if key in out:
                    where = _dotted(loc)
                    self.problems.append(
                        (_mark(key_node), f"{where}: found the key {key!r} twice, expected it once")
                    )
                self.keys[(*loc, key)] = _mark(key_node)
                out[key] = self.build(value_node, (*loc, key))
            return out
        items = [self.build(child, (*loc, i)) for i, child in enumerate(node.value)]
        self.items[loc] = [(item, (*loc, i)) for i, item in enumerate(items)]
        return items

    def _flatten(self, node: yaml.MappingNode) -> None:
        """Resolve ``<<`` merge keys, refusing a merge that contains itself."""
        try:
            self.loader.flatten_mapping(node)
        except RecursionError:
            raise _Refused(node, "found a merge (<<) of a mapping into itself, expected a finite document") from None

    def locate(self, loc: Loc, *, key: bool = False) -> _Mark:
        """The mark of the deepest part of ``loc`` the document has (a key's own mark when ``key``)."""
        if key and loc in self.keys:
            return self.keys[loc]
        current: Loc = ()
        for part in loc:
            if part == "[key]":
                return self.keys.get(current, self.values.get(current, (1, 1)))
            step = (*current, part)
            if step in self.values:
                current = step
                continue
            # a shorthand list normalised into a mapping (depends_on: [db]): find the item
            match = next((item_loc for item, item_loc in self.items.get(current, []) if item == part), None)
            if match is None:
                break
            current = match
        return self.values.get(current, (1, 1))


def _mark(node: yaml.Node) -> _Mark:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _found(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(map(str, list(value)[:6]))
        return f"a mapping with keys {keys}" if value else "an empty mapping"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _fields_at(loc: Loc) -> list[str]:
    """The keys a model accepts at ``loc`` (for "did you mean"), or none when not a model."""
    current: Any = Spec
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _expected(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    msg: str = error["msg"]
    simple = {
        "int_type": "an integer",
        "int_parsing": "an integer",
        "int_from_float": "an integer",
        "float_type": "a number",
        "float_parsing": "a number",
        "string_type": "text",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
        "dict_type": "a mapping",
        "model_type": "a mapping",
        "model_attributes_type": "a mapping",
        "list_type": "a list",
    }
    if kind in simple:
        return simple[kind]
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[
            kind
        ]
        bound = next(iter(ctx.values()), "?")
        return f"a number {op} {bound}"
    if kind == "literal_error":
        return f"one of {ctx.get('expected', '')}"
    if kind == "string_pattern_mismatch":
        return f"text matching {ctx.get('pattern', '')}"
    if kind == "too_short":
        return f"at least {ctx.get('min_length', 1)} item(s)"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:].removeprefix("nput should be ").removeprefix("input should be ")


def _describe(error: Any, doc: _Document) -> tuple[_Mark, str]:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        parent, key = loc[:-1], loc[-1]
        allowed = _fields_at(parent)
        hint = difflib.get_close_matches(str(key), allowed, n=1)
        text = f"{_dotted(parent)}: found unknown key {key!r}, expected one of {', '.join(allowed)}"
        if hint:
            text += f" (did you mean {hint[0]!r}?)"
        return doc.locate(loc, key=True), text
    if kind == "missing":
        return doc.locate(loc[:-1]), f"{_dotted(loc[:-1])}: found no key {loc[-1]!r}, expected one"
    where = _dotted(tuple(p for p in loc if p != "[key]"))
    return doc.locate(loc), f"{where}: found {_found(error.get('input'))}, expected {_expected(error)}"


def parse_spec(text: str, path: str | os.PathLike[str] = "<string>") -> Spec:
    """Validate minga.yaml ``text``; ``path`` is only used in messages.

    Raises :class:`~minga.errors.SpecError` listing every mistake found, each as
    ``path:line:column: where: found X, expected Y``.
    """
    name = os.fspath(path)
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or "invalid YAML"
            line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
            raise SpecError(f"found invalid YAML: {problem}", path=name, line=line, column=column) from None
        doc = _Document(loader)
        try:
            data = {} if node is None else doc.build(node, ())
        except _Refused as exc:
            raise SpecError(exc.message, path=name, line=exc.mark[0], column=exc.mark[1]) from None
    finally:
        loader.dispose()
    problems = list(doc.problems)
    spec: Spec | None = None
    try:
        spec = Spec.model_validate(data, context={"minga_defer_checks": True})
    except ValidationError as exc:
        problems.extend(_describe(error, doc) for error in exc.errors())
    if spec is not None and not problems:
        for loc, message in cross_checks(spec):
            problems.append((doc.locate(loc), f"{_dotted(tuple(p for p in loc if p != '[key]'))}: {message}"))
    if problems:
        problems.sort(key=lambda p: p[0])
        raise SpecError.collect(
            [SpecError(message, path=name, line=line, column=col) for (line, col), message in problems]
        )
    assert spec is not None
    spec._source = name
    spec._marks = {**doc.values, **doc.keys}
    return spec


def load_spec(path: str | os.PathLike[str] = DEFAULT_SPEC_FILE) -> Spec:
    """Read and validate the spec file at ``path``.

    Raises :class:`~minga.errors.SpecError` when the file is missing, unreadable or invalid.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(
            f"found no spec file {os.fspath(path)!r}, expected a minga.yaml (see `minga schema`)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read {os.fspath(path)!r}: {exc}") from None
    return parse_spec(text, path)


def home_dir(spec_path: str | os.PathLike[str] = DEFAULT_SPEC_FILE) -> Path:
    """Where minga keeps its state: ``$MINGA_HOME``, else ``.minga/`` beside the spec file."""
    env = os.environ.get("MINGA_HOME")
    if env:
        return Path(env)
    return Path(spec_path).resolve().parent / ".minga"
