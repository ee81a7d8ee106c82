"""AIP-158 page tokens: opaque, tied to the filters they were issued for."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

from render_common.errors import InvalidArgument
from render_common.renders.record import as_utc


def _filter_digest(project_id: str, states: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps([project_id, sorted(states)]).encode()).hexdigest()[:16]


def encode_token(
    created_at: datetime, render_id: str, project_id: str, states: Sequence[str]
) -> str:
    """A token continuing after (created_at, render_id) for the same filters."""
    stamp = as_utc(created_at)
    assert stamp is not None
    body = {"t": stamp.isoformat(), "i": render_id, "f": _filter_digest(project_id, states)}
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


def decode_token(token: str, project_id: str, states: Sequence[str]) -> tuple[datetime, str]:
    """The position a token continues after; InvalidArgument if forged or for other filters."""
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        position = (datetime.fromisoformat(body["t"]), str(body["i"]))
        digest = body["f"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument([("page_token", "is not a token this service issued")]) from exc
    if digest != _filter_digest(project_id, states):
        raise InvalidArgument([("page_token", "was issued for different filters")])
    return position
