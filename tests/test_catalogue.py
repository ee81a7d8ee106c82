"""The scene catalogue: its compiled fast path agrees with the full jsonschema validation."""

from __future__ import annotations

import copy
import json
from typing import Any

import fastjsonschema
import pytest

from render_common.config import ROOT
from services.render_api.catalogue import SceneCatalogue

SAMPLES = ROOT / "remotion" / "samples"

# Values that probe type, bounds, pattern and enum handling, including where Python and
# ECMA-262 regexes differ (a trailing newline) and where JSON numbers are floats.
PROBES: list[Any] = [
    None,
    True,
    0,
    1.0,
    1.5,
    -1,
    10**9,
    "",
    "a",
    "red",
    "red\n",
    "#336699",
    "#33669",
    "rgb(1, 2, 3)",
    "https://a.example/x.png",
    "https://a.example/x.png\n",
    "http://a.example/a b",
    "ftp://a.example/x",
    "x" * 5000,
    [],
    {},
]


def _sample_scenes() -> list[dict[str, Any]]:
    scenes: list[dict[str, Any]] = []
    for path in sorted(SAMPLES.glob("*.json")):
        scenes.extend(json.loads(path.read_text())["scenes"])
    scenes += [
        {"type": "image", "durationInFrames": 30, "props": {"src": "https://a.example/i.png"}},
        {"type": "video", "durationInFrames": 30, "props": {"src": "https://a.example/v.mp4"}},
    ]
    return scenes


def _variants(scene: dict[str, Any]) -> list[dict[str, Any]]:
    """The scene, then each prop and top-level field replaced by each probe, or removed."""
    out = [scene]
    for key in [*scene.get("props", {}), "extra"]:
        for probe in PROBES:
            changed = copy.deepcopy(scene)
            changed["props"][key] = probe
            out.append(changed)
        removed = copy.deepcopy(scene)
        removed["props"].pop(key, None)
        out.append(removed)
    for key in ("durationInFrames", "transition", "props"):
        for probe in PROBES:
            changed = copy.deepcopy(scene)
            changed[key] = probe
            out.append(changed)
    return out


@pytest.fixture(scope="module")
def catalogue() -> SceneCatalogue:
    return SceneCatalogue.load()


def test_every_scene_type_has_a_fast_path(catalogue: SceneCatalogue) -> None:
    assert set(catalogue._fast) == set(catalogue.scene_types)


def test_fast_path_agrees_with_jsonschema(catalogue: SceneCatalogue) -> None:
    checked = disagreements = 0
    failures: list[str] = []
    for scene in _sample_scenes():
        for variant in _variants(scene):
            kind = variant["type"]
            full_ok = not list(catalogue._validators[kind].iter_errors(variant))
            try:
                catalogue._fast[kind](variant)
                fast_ok = True
            except fastjsonschema.JsonSchemaValueException:
                fast_ok = False
            checked += 1
            if fast_ok != full_ok:
                disagreements += 1
                failures.append(f"fast={fast_ok} full={full_ok}: {json.dumps(variant)[:200]}")
    assert checked > 500
    assert disagreements == 0, "\n".join(failures[:20])


def test_invalid_scene_still_lists_each_violation(catalogue: SceneCatalogue) -> None:
    scene = {
        "type": "title",
        "durationInFrames": 30,
        "props": {"text": "", "subtitle": 3, "color": "red\n"},
    }
    paths = {violation.path for violation in catalogue.validate(scene)}
    assert {"props.text", "props.subtitle", "props.color"} <= paths


def test_unportable_schema_keeps_to_jsonschema() -> None:
    schema = json.loads((ROOT / "remotion" / "catalogue" / "scenes.schema.json").read_text())
    schema["oneOf"][0]["properties"]["props"]["unevaluatedProperties"] = False
    catalogue = SceneCatalogue(schema)
    assert catalogue._fast == {}
    assert catalogue.validate({"type": "color", "durationInFrames": 30, "props": {}})


@pytest.mark.parametrize(
    ("scene_type", "prop", "value"),
    [
        ("title", "text", "W" * 5000),  # maxLength
        ("image", "src", "https://cdn.example.com/a.png?q=" + "z" * 5000),  # maxLength
        ("image", "src", "ftp://cdn.example.com/" + "z" * 3000),  # pattern
    ],
)
def test_violations_quote_long_values_cut_short(
    catalogue: SceneCatalogue, scene_type: str, prop: str, value: str
) -> None:
    # The whole value echoed back overflowed the client's 8 KiB metadata limit
    # (RESOURCE_EXHAUSTED instead of INVALID_ARGUMENT).
    scene = {"type": scene_type, "durationInFrames": 30, "props": {prop: value}}
    (violation,) = catalogue.validate(scene)
    assert violation.path == f"props.{prop}"
    assert len(violation.description) < 200 and value[:40] in violation.description
