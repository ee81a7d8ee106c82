"""The scene catalogue: the compositions' zod schemas exported as JSON Schema.

`remotion/catalogue/scenes.schema.json` is generated from the TypeScript compositions
(`npm run schema` in remotion/) and checked in; CI fails when it is stale. Its root
describes one scene as a union on `type`; each branch is validated on its own so that a
bad prop is reported at its own field path rather than as "matches no branch".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator

from render_common.config import ROOT

DEFAULT_PATH = ROOT / "remotion" / "catalogue" / "scenes.schema.json"
_CAMEL_TO_PROTO = {"durationInFrames": "duration_in_frames"}


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
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


class SceneCatalogue:
    """Validates scenes (as JSON-like dicts) against the compositions' JSON Schema."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._schema = dict(schema)
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
        violations = []
        for error in sorted(validator.iter_errors(scene), key=lambda e: list(e.absolute_path)):
            path = ".".join(_CAMEL_TO_PROTO.get(str(p), str(p)) for p in error.absolute_path)
            violations.append(Violation(path or "props", error.message))
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


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
