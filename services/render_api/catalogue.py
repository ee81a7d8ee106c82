"""The scene catalogue: the compositions' zod schemas exported as JSON Schema.

`remotion/catalogue/scenes.schema.json` is generated from the TypeScript compositions
(`npm run schema` in remotion/) and checked in; CI fails when it is stale. Its root
describes one scene as a union on `type`; each branch is validated on its own so that a
bad prop is reported at its own field path rather than as "matches no branch".

Valid scenes, the hot path of StartRender, are checked by validators compiled to Python
code with fastjsonschema (about 15x faster than walking the schema); only a scene it
refuses goes through jsonschema, which lists every violation with its path. Asset props
(`x-asset`, see render_common/scene_assets.py) are read from the same schema. The fast
path is used only while the schema sticks to keywords that mean the same in draft 7
(fastjsonschema's newest draft) and in the catalogue's 2020-12.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import fastjsonschema
from jsonschema import Draft7Validator, Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator

from render_common.scene_assets import CATALOGUE_PATH, AssetCatalogue

log = logging.getLogger(__name__)

DEFAULT_PATH = CATALOGUE_PATH
_CAMEL_TO_PROTO = {"durationInFrames": "duration_in_frames"}
_DRAFT7 = "http://json-schema.org/draft-07/schema#"
MAX_SHOWN_CHARS = 80  # of an offending value quoted in a violation
# Keywords whose meaning is the same in draft 7 and 2020-12 (annotations included).
_PORTABLE_KEYWORDS = frozenset(
    {
        "$schema",
        "$id",
        "title",
        "description",
        "type",
        "properties",
        "required",
        "additionalProperties",
        "enum",
        "const",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "format",  # an annotation in both unless asked for (fastjsonschema: use_formats=False)
        "oneOf",
        "anyOf",
        "allOf",
    }
)


@dataclass(frozen=True, slots=True)
class Violation:
    """A field path inside one scene (proto naming) and what is wrong there."""

    path: str
    description: str


def ecma_to_python(pattern: str) -> str:
    """A JSON Schema (ECMA-262) regex in Python syntax where the two differ for us.

    ECMA's `$` (no multiline flag) matches only at the very end; Python's also matches
    before a trailing newline, so `"red\\n"` would pass `^[a-z]+$`. Unescaped `$` outside a
    character class becomes `\\Z`.
    """
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            out.append(r"\Z")
            continue
        out.append(char)
    return "".join(out)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_to_python(pattern))


def _ecma_pattern(
    validator: Validator, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """The `pattern` keyword with ECMA-262 end-of-input semantics."""
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{_shown(instance)} does not match {pattern!r}")


def _shown(value: Any) -> str:
    """A value as quoted in a violation, cut short: the details must fit gRPC's metadata."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN_CHARS else f"{text[: MAX_SHOWN_CHARS - 4]}...{text[-1]}"


def _description(error: ValidationError) -> str:
    """jsonschema's message with the offending value (e.g. a 5000-character URL) cut short."""
    shown = repr(error.instance)
    if len(shown) > MAX_SHOWN_CHARS:
        return error.message.replace(shown, _shown(error.instance))
    return error.message


class SceneCatalogue:
    """Validates scenes (as JSON-like dicts) against the compositions' JSON Schema."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._schema = dict(schema)
        self.assets = AssetCatalogue.from_schema(self._schema)
        """The asset props (`x-asset` marks) of each scene type."""
        draft = (
            Draft7Validator
            if "draft-07" in str(schema.get("$schema", ""))
            else Draft202012Validator
        )
        self._validator_class: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
            draft, {"pattern": _ecma_pattern}
        )
        base = {k: v for k, v in self._schema.items() if k not in ("oneOf", "anyOf")}
        self._validators: dict[str, Validator] = {}
        for branch in self._schema.get("oneOf") or self._schema.get("anyOf") or []:
            name = self._type_name(branch)
            if name:
                self._validators[name] = self._validator_class({**base, "allOf": [branch]})
        if not self._validators:
            raise ValueError("scene catalogue lists no scene types")
        self._fast: dict[str, Callable[[Any], Any]] = {}
        unportable = _schema_keywords(self._schema) - _PORTABLE_KEYWORDS
        if unportable:
            log.info("scene catalogue: no fast path (keywords %s)", ", ".join(sorted(unportable)))
        else:
            for name, validator in self._validators.items():
                branch = {**validator.schema, "$schema": _DRAFT7}  # type: ignore[dict-item]
                self._fast[name] = fastjsonschema.compile(branch, use_formats=False)

    @classmethod
    def load(cls, path: Path = DEFAULT_PATH) -> SceneCatalogue:
        """Load the checked-in catalogue."""
        return cls(json.loads(path.read_text()))

    @cached_property
    def scene_types(self) -> tuple[str, ...]:
        """The scene type names, sorted."""
        return tuple(sorted(self._validators))

    @cached_property
    def transition_types(self) -> tuple[str, ...]:
        """The transition type names the compositions support."""
        found: set[str] = set()
        for node in _walk(self._schema):
            transition = (
                node.get("properties", {}).get("transition") if isinstance(node, dict) else None
            )
            if isinstance(transition, dict):
                resolved = self._resolve(transition)
                kind = self._resolve(resolved.get("properties", {}).get("type", {}))
                found.update(kind.get("enum", []))
                if "const" in kind:
                    found.add(kind["const"])
        return tuple(sorted(found))

    def validate(self, scene: Mapping[str, Any]) -> list[Violation]:
        """Every violation of one scene; empty when valid."""
        kind = scene.get("type")
        validator = self._validators.get(kind) if isinstance(kind, str) else None
        if validator is None:
            return [
                Violation(
                    "type",
                    f"unknown scene type {kind!r}; expected one of {', '.join(self.scene_types)}",
                )
            ]
        fast = self._fast.get(kind) if isinstance(kind, str) else None
        if fast is not None:
            try:
                fast(scene)
            except fastjsonschema.JsonSchemaValueException:
                pass
            else:
                return []
        violations = []
        for error in sorted(validator.iter_errors(scene), key=lambda e: list(e.absolute_path)):
            path = ".".join(_CAMEL_TO_PROTO.get(str(p), str(p)) for p in error.absolute_path)
            violations.append(Violation(path or "props", _description(error)))
        return violations

    def _resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if not ref.startswith("#/"):
                break
            target: Any = self._schema
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def _type_name(self, branch: Mapping[str, Any]) -> str | None:
        resolved = self._resolve(branch)
        kind = self._resolve(resolved.get("properties", {}).get("type", {}))
        if "const" in kind:
            return str(kind["const"])
        enum = kind.get("enum")
        if isinstance(enum, list) and len(enum) == 1:
            return str(enum[0])
        return None


def _schema_keywords(node: Any) -> set[str]:
    """Every keyword used in a schema (the names of properties are not keywords)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key.startswith("x-"):
                continue
            found.add(key)
            if key == "properties" and isinstance(value, dict):
                for child in value.values():
                    found |= _schema_keywords(child)
            elif key not in ("enum", "const"):
                found |= _schema_keywords(value)
    elif isinstance(node, list):
        for item in node:
            found |= _schema_keywords(item)
    return found


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
