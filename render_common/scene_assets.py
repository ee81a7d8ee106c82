"""Which scene props are assets: read from the `x-asset` marks of the scene catalogue.

The compositions' zod schemas mark every asset prop with `asset(kind)` (remotion/src/
schema.ts), which exports to `remotion/catalogue/scenes.schema.json` as `format: "uri"`
plus `x-asset: "<kind>"` (image, video, audio, ...). This module derives from that mark,
per scene type, where the asset URLs sit in a scene, and it is the one place that does:
render_api checks those URLs at intake, the SSR engine prefetches exactly them and the
Lambda engine checks exactly them. Any other string is text, whatever it holds: a title
"Note: 12:30" or a caption that is itself a URL is never fetched nor rewritten.

A new asset prop (a soundtrack `asset("audio")`, a list of images) needs no change here:
marks are found under `properties`, array `items`/`prefixItems`, `anyOf`/`oneOf`/`allOf`
and local `$ref`s.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from render_common.config import ROOT

CATALOGUE_PATH = ROOT / "remotion" / "catalogue" / "scenes.schema.json"
ASSET_KEYWORD = "x-asset"
KINDS_KEYWORD = "x-asset-kinds"
EVERY_ITEM = "*"  # a path step meaning "each item of the array here"
ALLOWED_SCHEMES = ("http", "https")

Step = str | int
Location = tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class AssetProp:
    """Where a scene type holds an asset URL (`("props", "src")`) and of which kind."""

    path: Location  # property names, EVERY_ITEM for each array item, ints for tuple slots
    kind: str


@dataclass(frozen=True, slots=True)
class SceneAsset:
    """One asset URL found in a list of scenes."""

    scene: int  # index of the scene
    location: Location  # concrete path inside the scene, array indices included
    kind: str
    url: str

    @property
    def field_path(self) -> str:
        """Path inside the scene in the API's notation: `props.src`, `props.images[1]`."""
        out = ""
        for step in self.location:
            out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
        return out


def asset_url_problem(url: str) -> str | None:
    """Why a string cannot be an asset URL (http(s) with a host and a valid port), or None.

    Whether its address may be fetched from is the worker's decision (it resolves it).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ALLOWED_SCHEMES:
        return "only http(s) asset URLs are allowed"
    if not parts.hostname:
        return "the asset URL has no host"
    if port == 0:
        return "the asset URL has port 0"
    return None


class AssetCatalogue:
    """The asset props of each scene type, and the asset URLs of scenes."""

    def __init__(self, props: Mapping[str, Sequence[AssetProp]]) -> None:
        self._props = {kind: tuple(found) for kind, found in props.items()}

    @classmethod
    def from_schema(cls, schema: Mapping[str, Any]) -> AssetCatalogue:
        """Derive the asset props of every scene type (each branch of the root union)."""
        declared = schema.get(KINDS_KEYWORD)
        walker = _Walker(schema)
        props: dict[str, tuple[AssetProp, ...]] = {}
        for branch in schema.get("oneOf") or schema.get("anyOf") or []:
            name = walker.type_name(branch)
            if name is None:
                continue
            found = tuple(dict.fromkeys(walker.marks(branch, ())))
            unknown = sorted({p.kind for p in found} - set(declared or [p.kind for p in found]))
            if unknown:
                raise ValueError(
                    f"scene type {name!r} marks asset kinds {unknown} not listed in "
                    f"{KINDS_KEYWORD} {declared}"
                )
            props[name] = found
        if not props:
            raise ValueError("scene catalogue lists no scene types")
        return cls(props)

    @classmethod
    def load(cls, path: Path = CATALOGUE_PATH) -> AssetCatalogue:
        """From the checked-in catalogue file."""
        return cls.from_schema(json.loads(path.read_text()))

    @property
    def scene_types(self) -> tuple[str, ...]:
        """Every scene type of the catalogue, sorted."""
        return tuple(sorted(self._props))

    def props(self, scene_type: str) -> tuple[AssetProp, ...]:
        """The asset props of a scene type (none for an unknown type)."""
        return self._props.get(scene_type, ())

    def find(self, scenes: Sequence[Mapping[str, Any]]) -> list[SceneAsset]:
        """Every asset URL in the scenes, in scene and schema order (string values only)."""
        found: list[SceneAsset] = []
        for index, scene in enumerate(scenes):
            kind = scene.get("type")
            for prop in self.props(kind) if isinstance(kind, str) else ():
                for location, value in _values(scene, prop.path, ()):
                    if isinstance(value, str):
                        found.append(SceneAsset(index, location, prop.kind, value))
        return found

    def urls(self, scenes: Sequence[Mapping[str, Any]]) -> list[str]:
        """The distinct asset URLs of the scenes, in order."""
        return list(dict.fromkeys(asset.url for asset in self.find(scenes)))

    def replace(
        self, scenes: Sequence[Mapping[str, Any]], mapping: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """A copy of the scenes with each asset URL in `mapping` swapped; text untouched."""
        copied = [copy.deepcopy(dict(scene)) for scene in scenes]
        for asset in self.find(copied):
            if asset.url in mapping:
                parent: Any = copied[asset.scene]
                for step in asset.location[:-1]:
                    parent = parent[step]
                parent[asset.location[-1]] = mapping[asset.url]
        return copied


def _values(node: Any, path: Location, at: Location) -> Iterator[tuple[Location, Any]]:
    """The values at an abstract path in a JSON-like value, with their concrete locations."""
    if not path:
        yield at, node
        return
    step, rest = path[0], path[1:]
    if step == EVERY_ITEM:
        if isinstance(node, list):
            for index, item in enumerate(node):
                yield from _values(item, rest, (*at, index))
    elif isinstance(step, int):
        if isinstance(node, list) and step < len(node):
            yield from _values(node[step], rest, (*at, step))
    elif isinstance(node, Mapping) and step in node:
        yield from _values(node[step], rest, (*at, step))


class _Walker:
    """Finds `x-asset` marks in a JSON Schema, following local `$ref`s."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self._root = root

    def resolve(self, node: Any, seen: frozenset[str] = frozenset()) -> tuple[Any, frozenset[str]]:
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if not ref.startswith("#") or ref in seen:
                break
            seen = seen | {ref}
            target: Any = self._root
            for part in ref[1:].split("/")[1:]:
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node, seen

    def type_name(self, branch: Any) -> str | None:
        node, _ = self.resolve(branch)
        kind, _ = self.resolve(node.get("properties", {}).get("type", {}))
        if "const" in kind:
            return str(kind["const"])
        enum = kind.get("enum")
        return str(enum[0]) if isinstance(enum, list) and len(enum) == 1 else None

    def marks(
        self, node: Any, path: Location, seen: frozenset[str] = frozenset()
    ) -> Iterator[AssetProp]:
        node, seen = self.resolve(node, seen)
        if not isinstance(node, Mapping):
            return
        kind = node.get(ASSET_KEYWORD)
        if isinstance(kind, str):
            yield AssetProp(path, kind)
            return
        for name, child in (node.get("properties") or {}).items():
            yield from self.marks(child, (*path, name), seen)
        if isinstance(node.get("items"), Mapping):
            yield from self.marks(node["items"], (*path, EVERY_ITEM), seen)
        for index, child in enumerate(node.get("prefixItems") or []):
            yield from self.marks(child, (*path, index), seen)
        for combinator in ("allOf", "anyOf", "oneOf"):
            for child in node.get(combinator) or []:
                yield from self.marks(child, path, seen)
