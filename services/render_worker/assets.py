"""Asset prefetch: download the scenes' asset URLs before rendering, safely.

Which props are assets is the catalogue's word (`x-asset`, render_common/scene_assets.py);
text props are never fetched. Only http(s). Addresses follow the policy of
render_common/outbound.py (public only, unless ASSET_ALLOWED_NETWORKS lists them; the
connection goes to the checked address, with SNI and certificate checks against the
original name). Redirects are followed by hand, each hop checked again. Size is
bounded, and ASSET_TIMEOUT_SECONDS bounds each of connect and read and the whole
download (DNS, redirects and a server that trickles bytes included); downloads are
cached by URL. A missing asset fails the render at once with its URL; Chromium only
ever loads the local copies, served by the render host.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from render_common.outbound import (
    ForbiddenAddress,
    IPAddress,
    Network,
    Unresolvable,
    parse_networks,
    permitted,
    pinned,
    resolve_permitted,
)
from render_common.scene_assets import asset_url_problem
from services.render_worker.failures import RenderFailure

MAX_REDIRECTS = 3


@dataclass(frozen=True, slots=True)
class AssetPolicy:
    """Limits of the prefetcher."""

    max_bytes: int
    timeout_seconds: float
    allowed_networks: tuple[Network, ...] = ()

    @classmethod
    def create(cls, max_bytes: int, timeout: float, allowed: Iterable[str]) -> AssetPolicy:
        """Parse the CIDRs of ASSET_ALLOWED_NETWORKS."""
        return cls(max_bytes, timeout, parse_networks(allowed))

    def permits(self, address: IPAddress) -> bool:
        """Whether an address may be fetched from."""
        return permitted(address, self.allowed_networks)


class AssetFetcher:
    """Downloads assets into a cache directory under the policy."""

    def __init__(self, cache_dir: Path, policy: AssetPolicy) -> None:
        self.cache_dir = cache_dir
        self.policy = policy
        cache_dir.mkdir(parents=True, exist_ok=True)

    def cached_name(self, url: str) -> str:
        """File name of a URL's cached copy (hash plus the URL's extension)."""
        suffix = Path(urlsplit(url).path).suffix.lower()
        if not re.fullmatch(r"\.[a-z0-9]{1,8}", suffix):
            suffix = ""
        return hashlib.sha256(url.encode()).hexdigest()[:32] + suffix

    def content_type(self, name: str) -> str:
        """The Content-Type the asset server sent for a cached copy (else from its name)."""
        try:
            return (self.cache_dir / f".{name}.type").read_text().strip() or _guessed(name)
        except OSError:
            return _guessed(name)

    async def fetch_all(self, urls: list[str]) -> dict[str, str]:
        """Fetch every URL (in parallel); returns URL -> cached file name."""
        names = await asyncio.gather(*(self.fetch(url) for url in urls))
        return dict(zip(urls, names, strict=True))

    async def fetch(self, url: str) -> str:
        """Fetch one URL into the cache (reused when present); returns the file name."""
        name = self.cached_name(url)
        target = self.cache_dir / name
        if target.exists():
            return name
        try:
            async with asyncio.timeout(self.policy.timeout_seconds):
                await self._download(url, target)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise self._timed_out(url) from exc
        return name

    def _timed_out(self, url: str) -> RenderFailure:
        return RenderFailure(
            "ASSET_TIMEOUT",
            f"asset not fetched within ASSET_TIMEOUT_SECONDS "
            f"({self.policy.timeout_seconds:g}s): {url}",
            retryable=True,
        )

    async def _download(self, url: str, target: Path) -> None:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            address = await self._checked_address(current, url)
            target_request = pinned(current, address)
            headers = {
                "Host": target_request.host_header,
                "User-Agent": "render-export/asset-prefetch",
            }
            async with httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                timeout=httpx.Timeout(self.policy.timeout_seconds),
            ) as client:
                try:
                    async with client.stream(
                        "GET",
                        target_request.url,
                        headers=headers,
                        extensions=target_request.extensions,
                    ) as response:
                        if response.is_redirect and "location" in response.headers:
                            current = urljoin(current, response.headers["location"])
                            continue
                        self._check_status(response.status_code, url)
                        await self._save(response, target, url)
                        return
                except httpx.TimeoutException as exc:
                    raise self._timed_out(url) from exc
                except httpx.HTTPError as exc:
                    raise RenderFailure(
                        "ASSET_UNAVAILABLE",
                        f"asset could not be fetched ({_network_error(exc)}): {url}",
                        retryable=True,
                    ) from exc
        raise RenderFailure("ASSET_FORBIDDEN", f"too many redirects: {url}", retryable=False)

    async def _checked_address(self, current: str, original: str) -> IPAddress:
        problem = asset_url_problem(current)
        if problem is not None:
            raise RenderFailure("ASSET_FORBIDDEN", f"{problem}: {original}", retryable=False)
        try:
            return await resolve_permitted(current, self.policy.allowed_networks)
        except Unresolvable as exc:
            raise RenderFailure(
                "ASSET_NOT_FOUND", f"asset host does not resolve: {original}", retryable=False
            ) from exc
        except ForbiddenAddress as exc:
            raise RenderFailure(
                "ASSET_FORBIDDEN",
                f"asset URL points at a private or reserved address ({exc.address}): {original}",
                retryable=False,
            ) from exc

    @staticmethod
    def _check_status(status: int, url: str) -> None:
        if status in (404, 410):
            raise RenderFailure(
                "ASSET_NOT_FOUND", f"asset not found (HTTP {status}): {url}", retryable=False
            )
        if status >= 500 or status == 429:
            raise RenderFailure(
                "ASSET_UNAVAILABLE", f"asset server error (HTTP {status}): {url}", retryable=True
            )
        if status >= 400 or status < 200:
            raise RenderFailure(
                "ASSET_UNAVAILABLE", f"asset refused (HTTP {status}): {url}", retryable=False
            )

    async def _save(self, response: httpx.Response, target: Path, url: str) -> None:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.policy.max_bytes:
            raise RenderFailure(
                "ASSET_TOO_LARGE",
                f"asset larger than {self.policy.max_bytes} bytes: {url}",
                retryable=False,
            )
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        size = 0
        try:
            with partial.open("wb") as handle:
                async for chunk in response.aiter_bytes(1 << 16):
                    size += len(chunk)
                    if size > self.policy.max_bytes:
                        raise RenderFailure(
                            "ASSET_TOO_LARGE",
                            f"asset larger than {self.policy.max_bytes} bytes: {url}",
                            retryable=False,
                        )
                    handle.write(chunk)
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
            if re.fullmatch(r"[\w.+-]+/[\w.+-]+", content_type):
                target.with_name(f".{target.name}.type").write_text(content_type)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)


def _guessed(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _network_error(exc: httpx.HTTPError) -> str:
    """What went wrong on the wire, in words (httpx leaves some messages empty)."""
    if str(exc):
        return str(exc)
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server broke off the response"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "the connection failed mid-transfer"
    return "network error"
