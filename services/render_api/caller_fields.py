"""Validation of StartRender's caller fields: `webhook` and `metadata`.

The webhook URL must be https (http only when CALLER_WEBHOOK_ALLOW_HTTP is set, for
development and tests), at most 2048 characters, with a host, no credentials and no
fragment; a host written as an IP address must be public (or inside
CALLER_WEBHOOK_ALLOWED_NETWORKS). Host names are resolved and checked again on every
delivery (render_common/outbound.py), not here: DNS answers change, and intake stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from render.v1 import render_service_pb2

from render_common.config import Settings
from render_common.outbound import literal_address, parse_networks, permitted

MAX_URL_LENGTH = 2048
MAX_METADATA_ENTRIES = 32
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


def webhook_url(
    request: render_service_pb2.StartRenderRequest,
    settings: Settings,
    violations: list[tuple[str, str]],
) -> str:
    """The webhook URL ("" without one); problems are appended to `violations`."""
    if not request.HasField("webhook"):
        return ""
    url = request.webhook.url
    problem = _url_problem(url, settings)
    if problem:
        violations.append(("webhook.url", problem))
        return ""
    return url


def _url_problem(url: str, settings: Settings) -> str:
    if not url:
        return "required when webhook is set"
    if len(url) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return "is not a valid URL"
    schemes = ("https", "http") if settings.caller_webhook_allow_http else ("https",)
    if parts.scheme not in schemes:
        return "must be an https URL"
    if not parts.hostname or any(c.isspace() for c in url):
        return "must be an absolute URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials"
    if parts.fragment:
        return "must not contain a fragment"
    address = literal_address(parts.hostname)
    allowed = parse_networks(settings.caller_webhook_allowed_networks)
    if address is not None and not permitted(address, allowed):
        return f"points at a private or reserved address ({address})"
    return ""


def metadata(pairs: Mapping[str, str], violations: list[tuple[str, str]]) -> dict[str, str]:
    """The caller's metadata as a dict; problems are appended to `violations`."""
    if len(pairs) > MAX_METADATA_ENTRIES:
        violations.append(
            ("metadata", f"at most {MAX_METADATA_ENTRIES} entries are allowed, got {len(pairs)}")
        )
        return {}
    for key, value in sorted(pairs.items()):
        path = f"metadata[{key[:MAX_METADATA_KEY]!r}]"
        if not 1 <= len(key) <= MAX_METADATA_KEY or not key.isprintable():
            violations.append((path, f"keys must be 1-{MAX_METADATA_KEY} printable characters"))
        if len(value) > MAX_METADATA_VALUE:
            violations.append((path, f"values must be at most {MAX_METADATA_VALUE} characters"))
    return dict(pairs)
