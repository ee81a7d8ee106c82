"""Asset prefetch: private, loopback, link-local and non-http URLs are refused before any I/O;
ASSET_TIMEOUT_SECONDS bounds connect, read and the whole download.

Which props are assets at all is tested in test_scene_assets.py (the catalogue's marks)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from render_common.config import Settings
from services.render_worker.assets import AssetFetcher, AssetPolicy
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


def loopback_fetcher(tmp_path: Path, **settings: Any) -> AssetFetcher:
    """A fetcher configured like the worker's, from Settings, with loopback allowed."""
    config = Settings(asset_allowed_networks=("127.0.0.1/32",), **settings)
    return AssetFetcher(
        tmp_path / "assets",
        AssetPolicy.create(
            config.asset_max_bytes, config.asset_timeout_seconds, config.asset_allowed_networks
        ),
    )


@pytest.fixture
def server() -> Iterator[AssetServer]:
    assets = AssetServer()
    yield assets
    assets.close()


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose listener never accepts and whose backlog is full: connecting hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for sock in [*fillers, listener]:
        sock.close()


async def test_timeout_setting_is_not_undercut_by_httpx_default(
    tmp_path: Path, server: AssetServer
) -> None:
    # httpx's own default is 5 s per read; the setting (7 s) is what counts.
    fetcher = loopback_fetcher(tmp_path, asset_timeout_seconds=7.0)
    name = await fetcher.fetch(server.url("/slow/5.5/image.png"))
    assert (tmp_path / "assets" / name).read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "path",
    [
        "/slow/5/image.png",  # no answer at all (read)
        "/trickle.png",  # a byte every 50 ms: no read ever times out, the total does
        "/redirect/trickle.png",  # the total spans the redirect hops
    ],
)
async def test_slow_server_fails_as_asset_timeout(
    tmp_path: Path, server: AssetServer, path: str
) -> None:
    fetcher = loopback_fetcher(tmp_path, asset_timeout_seconds=1.0)
    url = server.url(path)
    async with asyncio.timeout(30):  # a broken bound fails the test instead of hanging it
        with pytest.raises(RenderFailure) as caught:
            await fetcher.fetch(url)
    assert caught.value.reason == "ASSET_TIMEOUT" and caught.value.retryable
    assert caught.value.message == (f"asset not fetched within ASSET_TIMEOUT_SECONDS (1s): {url}")
    assert list((tmp_path / "assets").iterdir()) == []  # no partial file left


async def test_connect_timeout_is_asset_timeout(tmp_path: Path, unanswered_port: int) -> None:
    fetcher = loopback_fetcher(tmp_path, asset_timeout_seconds=1.0)
    url = f"http://127.0.0.1:{unanswered_port}/image.png"
    async with asyncio.timeout(30):
        with pytest.raises(RenderFailure) as caught:
            await fetcher.fetch(url)
    assert caught.value.reason == "ASSET_TIMEOUT" and url in caught.value.message


async def test_unreachable_server_names_the_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once closed
    fetcher = loopback_fetcher(tmp_path, asset_timeout_seconds=5.0)
    url = f"http://127.0.0.1:{port}/image.png"
    with pytest.raises(RenderFailure) as caught:
        await fetcher.fetch(url)
    assert caught.value.reason == "ASSET_UNAVAILABLE" and caught.value.retryable
    assert "()" not in caught.value.message and url in caught.value.message


async def test_redirects_query_strings_and_percent_encoding(
    tmp_path: Path, server: AssetServer
) -> None:
    fetcher = loopback_fetcher(tmp_path)
    for path in ["/redirect/image.png?size=large&v=2", "/image%20copy.png?a=%2F&b=%E2%9C%93"]:
        name = await fetcher.fetch(server.url(path))
        assert (tmp_path / "assets" / name).read_bytes().startswith(b"\x89PNG")
    assert server.requests[-3:] == [
        "/redirect/image.png?size=large&v=2",
        "/image.png?size=large&v=2",
        "/image%20copy.png?a=%2F&b=%E2%9C%93",
    ]
