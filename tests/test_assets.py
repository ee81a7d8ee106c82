"""Asset prefetch: private, loopback, link-local and non-http URLs are refused before any I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.render_worker.assets import AssetFetcher, AssetPolicy, asset_urls, replace_urls
from services.render_worker.failures import RenderFailure
from tests.support.asset_server import AssetServer


@pytest.fixture
def fetcher(tmp_path: Path) -> AssetFetcher:
    return AssetFetcher(tmp_path / "assets", AssetPolicy.create(1 << 20, 5.0, ()))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://localhost:8080/x.png",
        "http://10.0.0.1/x.png",
        "http://192.168.1.10/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x.png",
        "http://[::ffff:127.0.0.1]/x.png",
        "http://0.0.0.0/x.png",
    ],
)
async def test_private_addresses_are_refused(fetcher: AssetFetcher, url: str) -> None:
    with pytest.raises(RenderFailure) as caught:
        await fetcher.fetch(url)
    assert caught.value.reason == "ASSET_FORBIDDEN" and not caught.value.retryable
    assert url in caught.value.message


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x.png", "data:image/png;base64,AAAA"]
)
async def test_non_http_schemes_are_refused(fetcher: AssetFetcher, url: str) -> None:
    with pytest.raises(RenderFailure) as caught:
        await fetcher.fetch(url)
    assert caught.value.reason == "ASSET_FORBIDDEN"


async def test_allowed_network_fetches_and_caches(tmp_path: Path) -> None:
    server = AssetServer()
    try:
        fetcher = AssetFetcher(
            tmp_path / "assets", AssetPolicy.create(1 << 20, 5.0, ["127.0.0.1/32"])
        )
        name = await fetcher.fetch(server.url("/image.png"))
        assert (tmp_path / "assets" / name).read_bytes().startswith(b"\x89PNG")
        await fetcher.fetch(server.url("/image.png"))
        assert server.requests.count("/image.png") == 1  # second time from the cache
        with pytest.raises(RenderFailure) as caught:
            await fetcher.fetch(server.url("/missing.png"))
        assert caught.value.reason == "ASSET_NOT_FOUND" and not caught.value.retryable
        assert server.url("/missing.png") in caught.value.message
        with pytest.raises(RenderFailure) as caught:
            await fetcher.fetch(server.url("/flaky-1.png"))
        assert caught.value.reason == "ASSET_UNAVAILABLE" and caught.value.retryable
        small = AssetFetcher(tmp_path / "small", AssetPolicy.create(10, 5.0, ["127.0.0.1/32"]))
        with pytest.raises(RenderFailure) as caught:
            await small.fetch(server.url("/image.png"))
        assert caught.value.reason == "ASSET_TOO_LARGE"
        assert list((tmp_path / "small").iterdir()) == []  # no partial file left
    finally:
        server.close()


def test_urls_are_found_and_replaced() -> None:
    scenes = [
        {"type": "image", "props": {"src": "https://cdn.example/a.png"}},
        {"type": "title", "props": {"text": "not a url", "color": "#fff"}},
        {"type": "video", "props": {"src": "https://cdn.example/a.png"}},
    ]
    assert asset_urls(scenes) == ["https://cdn.example/a.png"]
    replaced = replace_urls(
        scenes, {"https://cdn.example/a.png": "http://127.0.0.1:1/assets/x.png"}
    )
    assert replaced[0]["props"]["src"] == "http://127.0.0.1:1/assets/x.png"
    assert scenes[0]["props"]["src"] == "https://cdn.example/a.png"
