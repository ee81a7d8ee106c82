"""Asset prefetch: download every URL in scene props before rendering, safely.

Only http(s). The host name is resolved first and every address must be public (private,
loopback, link-local, multicast, reserved and unspecified ranges are refused, IPv4-mapped
IPv6 included) unless ASSET_ALLOWED_NETWORKS lists it; the connection then goes to the
checked address (no second lookup for DNS rebinding), with SNI and certificate checks
against the original name. Redirects are followed by hand, each hop checked again. Size
and time are bounded; downloads are cached by URL. A missing asset fails the render at once
with its URL; Chromium only ever loads the local copies, served by the render host.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from services.render_worker.failures import RenderFailure

URL_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
MAX_REDIRECTS = 3
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AssetPolicy:
    """Limits of the prefetcher."""

    max_bytes: int
    timeout_seconds: float
    allowed_networks: tuple[Network, ...] = ()

    @classmethod
    def create(cls, max_bytes: int, timeout: float, allowed: Iterable[str]) -> AssetPolicy:
        """Parse the CIDRs of ASSET_ALLOWED_NETWORKS."""
        return cls(
            max_bytes, timeout, tuple(ipaddress.ip_network(n, strict=False) for n in allowed)
        )

    def permits(self, address: IPAddress) -> bool:
        """Whether an address may be fetched from."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allowed_networks):
            return True
        return address.is_global and not (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
        )


def asset_urls(scenes: list[dict[str, Any]]) -> list[str]:
    """Every URL-looking string in the scenes' props, in order, without repeats."""
    found: dict[str, None] = {}

    def walk(value: Any) -> None:
        if isinstance(value, str) and URL_PATTERN.match(value) and not value.startswith("#"):
            found[value] = None
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for scene in scenes:
        walk(scene.get("props", {}))
    return list(found)


def replace_urls(scenes: list[dict[str, Any]], mapping: dict[str, str]) -> list[dict[str, Any]]:
    """A copy of the scenes with each prefetched URL replaced by its local URL."""

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            return mapping.get(value, value)
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    return [swap(scene) for scene in scenes]


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

    async def fetch_all(self, urls: list[str]) -> dict[str, str]:
        """Fetch every URL (in parallel); returns URL -> cached file name."""
        names = await asyncio.gather(*(self.fetch(url) for url in urls))
        return dict(zip(urls, names, strict=True))

    async def check_all(self, urls: list[str]) -> None:
        """Refuse URLs another party fetches for us (Lambda): scheme and resolved address.

        Without fetching, redirects cannot be followed here; the address check still keeps
        metadata endpoints and private networks out of the render's reach.
        """
        for url in urls:
            await self._checked_address(url, url)

    async def fetch(self, url: str) -> str:
        """Fetch one URL into the cache (reused when present); returns the file name."""
        name = self.cached_name(url)
        target = self.cache_dir / name
        if target.exists():
            return name
        try:
            async with asyncio.timeout(self.policy.timeout_seconds):
                await self._download(url, target)
        except TimeoutError as exc:
            raise RenderFailure(
                "ASSET_TIMEOUT",
                f"asset took longer than {self.policy.timeout_seconds:g}s: {url}",
                retryable=True,
            ) from exc
        return name

    async def _download(self, url: str, target: Path) -> None:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            address, host = await self._checked_address(current, url)
            parts = urlsplit(current)
            literal = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
            netloc = literal + (f":{parts.port}" if parts.port else "")
            pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
            headers = {
                "Host": parts.netloc.rsplit("@", 1)[-1],
                "User-Agent": "render-export/asset-prefetch",
            }
            async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
                try:
                    async with client.stream(
                        "GET", pinned, headers=headers, extensions={"sni_hostname": host}
                    ) as response:
                        if response.is_redirect and "location" in response.headers:
                            current = urljoin(current, response.headers["location"])
                            continue
                        self._check_status(response.status_code, url)
                        await self._save(response, target, url)
                        return
                except httpx.HTTPError as exc:
                    raise RenderFailure(
                        "ASSET_UNAVAILABLE",
                        f"asset could not be fetched ({exc}): {url}",
                        retryable=True,
                    ) from exc
        raise RenderFailure("ASSET_FORBIDDEN", f"too many redirects: {url}", retryable=False)

    async def _checked_address(self, current: str, original: str) -> tuple[IPAddress, str]:
        parts = urlsplit(current)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RenderFailure(
                "ASSET_FORBIDDEN",
                f"only http(s) asset URLs are allowed: {original}",
                retryable=False,
            )
        host = parts.hostname
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host,
                parts.port or (443 if parts.scheme == "https" else 80),
                type=socket.SOCK_STREAM,
            )
        except socket.gaierror as exc:
            raise RenderFailure(
                "ASSET_NOT_FOUND", f"asset host does not resolve: {original}", retryable=False
            ) from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        refused = [a for a in addresses if not self.policy.permits(a)]
        if not addresses or refused:
            raise RenderFailure(
                "ASSET_FORBIDDEN",
                "asset URL points at a private or reserved address "
                f"({refused[0] if refused else host}): {original}",
                retryable=False,
            )
        return addresses[0], host

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
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
