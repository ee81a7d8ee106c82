"""Asset props come from the catalogue's `x-asset` marks, for every scene type; text is text."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from google.protobuf import struct_pb2
from render.v1 import render_pb2

from render_common.config import Settings
from render_common.errors import InvalidArgument
from render_common.scene_assets import (
    CATALOGUE_PATH,
    AssetCatalogue,
    AssetProp,
    SceneAsset,
    asset_url_problem,
)
from services.render_api.catalogue import SceneCatalogue
from services.render_api.validation import RequestValidator
from tests.support.scenes import start_request

EXPECTED = {
    "title": (),
    "text": (),
    "image": (AssetProp(("props", "src"), "image"),),
    "video": (AssetProp(("props", "src"), "video"),),
    "color": (),
    "gradient": (),
}

URL_LIKE_TEXT = [
    "Note: this is a title",
    "Chapter 1: Intro",
    "12:30",
    "Q&A: pricing",
    "https://cdn.example.com/a.png",
    "http://169.254.169.254/latest/meta-data/",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "mailto:team@example.com",
    "data:image/png;base64,AAAA",
]


def schema() -> dict[str, Any]:
    return dict(json.loads(CATALOGUE_PATH.read_text()))


def props_of(doc: dict[str, Any], scene_type: str) -> dict[str, Any]:
    branch = next(b for b in doc["oneOf"] if b["properties"]["type"].get("const") == scene_type)
    return dict(branch["properties"]["props"])


def test_every_scene_type_has_its_asset_props() -> None:
    catalogue = AssetCatalogue.load()
    doc = schema()
    assert catalogue.scene_types == tuple(sorted(doc["x-scene-types"])) == tuple(sorted(EXPECTED))
    for scene_type, expected in EXPECTED.items():
        assert catalogue.props(scene_type) == expected, scene_type
    assert catalogue.props("no-such-type") == ()
    # The mark is what the TS helper asset() exports: format uri plus the kind.
    src = props_of(doc, "image")["properties"]["src"]
    assert src["format"] == "uri" and src["x-asset"] == "image"
    assert doc["x-asset-kinds"] == ["image", "video", "audio"]


@pytest.mark.parametrize("text", URL_LIKE_TEXT)
def test_text_props_are_never_assets(text: str) -> None:
    catalogue = AssetCatalogue.load()
    scenes = [
        {"type": "title", "durationInFrames": 30, "props": {"text": text, "subtitle": text}},
        {"type": "text", "durationInFrames": 30, "props": {"text": text}},
        {"type": "image", "durationInFrames": 30, "props": {"src": "https://a.example/i.png"}},
    ]
    assert catalogue.urls(scenes) == ["https://a.example/i.png"]
    replaced = catalogue.replace(
        scenes, {text: "http://127.0.0.1:1/x", "https://a.example/i.png": "L"}
    )
    assert replaced[0]["props"] == scenes[0]["props"] and replaced[1] == scenes[1]
    assert replaced[2]["props"]["src"] == "L"


def test_found_replaced_and_deduplicated_in_order() -> None:
    catalogue = AssetCatalogue.load()
    shared = "https://cdn.example/a.png"
    scenes: list[dict[str, Any]] = [
        {"type": "image", "props": {"src": shared, "fit": "cover"}},
        {"type": "title", "props": {"text": shared}},  # the same string, as text
        {"type": "video", "props": {"src": "https://cdn.example/v.mp4", "muted": True}},
        {"type": "image", "props": {"src": shared}},
        {"type": "image", "props": {"src": 3}},  # not a string: intake refuses it, never fetched
        {"type": "image", "props": {}},
        {"type": "unknown", "props": {"src": "https://cdn.example/u.png"}},
    ]
    assert catalogue.find(scenes) == [
        SceneAsset(0, ("props", "src"), "image", shared),
        SceneAsset(2, ("props", "src"), "video", "https://cdn.example/v.mp4"),
        SceneAsset(3, ("props", "src"), "image", shared),
    ]
    assert catalogue.urls(scenes) == [shared, "https://cdn.example/v.mp4"]
    replaced = catalogue.replace(scenes, {shared: "http://127.0.0.1:9/assets/abc.png"})
    assert (
        replaced[0]["props"]["src"]
        == replaced[3]["props"]["src"]
        == ("http://127.0.0.1:9/assets/abc.png")
    )
    assert replaced[1]["props"]["text"] == shared  # text stays text
    assert scenes[0]["props"]["src"] == shared  # the input is not modified


def with_new_asset_props(doc: dict[str, Any]) -> dict[str, Any]:
    """The catalogue plus what `asset("audio")` and a list of `asset("image")` would export."""
    doc = copy.deepcopy(doc)
    src = props_of(doc, "image")["properties"]["src"]
    audio = {**src, "x-asset": "audio", "description": "http(s) URL of the audio"}
    doc["$defs"] = {"Soundtrack": {"type": "object", "properties": {"src": audio}}}
    title = next(b for b in doc["oneOf"] if b["properties"]["type"]["const"] == "title")
    title_props = title["properties"]["props"]["properties"]
    title_props["soundtrack"] = {"anyOf": [{"$ref": "#/$defs/Soundtrack"}, {"type": "null"}]}
    title_props["gallery"] = {"type": "array", "items": {**src}}
    return doc


def test_a_new_asset_prop_is_picked_up_from_the_schema() -> None:
    catalogue = AssetCatalogue.from_schema(with_new_asset_props(schema()))
    assert catalogue.props("title") == (
        AssetProp(("props", "soundtrack", "src"), "audio"),
        AssetProp(("props", "gallery", "*"), "image"),
    )
    scene: dict[str, Any] = {
        "type": "title",
        "durationInFrames": 30,
        "props": {
            "text": "Soundtrack: https://not.an.asset/x.mp3",
            "soundtrack": {"src": "https://cdn.example/s.mp3"},
            "gallery": ["https://cdn.example/1.png", "https://cdn.example/2.png"],
        },
    }
    found = catalogue.find([scene])
    assert [(f.field_path, f.kind, f.url) for f in found] == [
        ("props.soundtrack.src", "audio", "https://cdn.example/s.mp3"),
        ("props.gallery[0]", "image", "https://cdn.example/1.png"),
        ("props.gallery[1]", "image", "https://cdn.example/2.png"),
    ]
    (replaced,) = catalogue.replace([scene], {"https://cdn.example/2.png": "L"})
    assert replaced["props"]["gallery"] == ["https://cdn.example/1.png", "L"]
    assert replaced["props"]["text"] == scene["props"]["text"]


def test_render_api_checks_a_new_asset_prop_by_the_same_mark() -> None:
    validator = RequestValidator(Settings(), SceneCatalogue(with_new_asset_props(schema())))
    props = struct_pb2.Struct()
    props.update({"text": "Q&A: 12:30", "soundtrack": {"src": "https://:80/s.mp3"}})
    request = start_request(
        scenes=[render_pb2.Scene(type="title", duration_in_frames=30, props=props)]
    )
    with pytest.raises(InvalidArgument) as caught:
        validator.start_request(request)
    assert [path for path, _ in caught.value.violations] == ["scenes[0].props.soundtrack.src"]


def test_an_undeclared_asset_kind_is_refused() -> None:
    doc = schema()
    props_of(doc, "image")["properties"]["src"]["x-asset"] = "hologram"
    with pytest.raises(ValueError, match="hologram"):
        AssetCatalogue.from_schema(doc)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://cdn.example.com/a.png", None),
        ("http://cdn.example.com:8080/a%20b.png?w=1&h=2#t", None),
        ("https://user:pass@cdn.example.com/a.png", None),
        ("http://[2001:db8::1]:8443/a.png", None),
        ("https://xn--bcher-kva.example/b.png", None),
        ("https://例え.jp/画像.png", None),
        ("ftp://cdn.example.com/a.png", "only http(s)"),
        ("javascript:alert(1)", "only http(s)"),
        ("//cdn.example.com/a.png", "only http(s)"),
        ("http:///a.png", "no host"),
        ("https://:443/a.png", "no host"),
        ("http://cdn.example.com:99999/a.png", "not a valid URL"),
        ("http://cdn.example.com:0/a.png", "port 0"),
        ("http://[::1/a.png", "not a valid URL"),
    ],
)
def test_asset_url_problems(url: str, problem: str | None) -> None:
    found = asset_url_problem(url)
    assert (found is None) if problem is None else (found is not None and problem in found)
