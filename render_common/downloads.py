"""Object key -> download URL: the one place every reader of a render turns a stored key
into a link (GetRender, ListRenders, CancelRender, the terminal progress event).

The row stores where the output is, not a URL that goes stale: `storage` (LOCAL, S3 or
LAMBDA), `storage_location` (the local root directory, or the bucket) and the object keys
(`output_key`, `thumbnail_key`, `captions_key`). A link is made each time a render is read:

- LOCAL: the file's `file://` URL under the root;
- S3 (our bucket, `S3_ENDPOINT_URL` for R2/MinIO) and LAMBDA (a private output in the
  Remotion bucket): a SigV4 presigned GET valid for DOWNLOAD_URL_TTL_SECONDS.

A row without `storage` (a public Lambda output, whose URL never expires, or a row written
before migration 0002 that could not be matched to a key) keeps returning its stored URL;
a public output's captions sidecar, public beside it, is that URL with its own key.

Signing is local HMAC, but botocore's `generate_presigned_url` spends about 350 us per URL
on its request pipeline (endpoint rules, event hooks), 70 ms for a page of 100 renders.
So botocore is asked once per bucket for the object URL's form (endpoint, addressing style,
signing region) and the SigV4 query signature is computed here, with the day's signing
key cached: a few microseconds per URL. One client per storage kind per process.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

from render_common.renders.record import Render

if TYPE_CHECKING:  # the CLI imports this module (resources.py) and reads no Settings
    from render_common.config import Settings

log = logging.getLogger(__name__)

LOCAL = "local"  # storage_location is the root directory
S3 = "s3"  # our bucket (STORAGE_URL=s3://..., S3_ENDPOINT_URL)
LAMBDA = "lambda"  # a private output in the Remotion Lambda bucket
STORAGES = (LOCAL, S3, LAMBDA)

_ALGORITHM = "AWS4-HMAC-SHA256"
_PROBE_KEY = "probe"


@dataclass(frozen=True, slots=True)
class StoredObject:
    """Where an object lives: the storage kind, its root directory or bucket, and the key."""

    storage: str  # one of STORAGES
    location: str  # LOCAL: absolute root directory; S3, LAMBDA: bucket name
    key: str


def _quote(value: str, safe: str = "-_.~") -> str:
    return quote(value, safe=safe)


class S3Signer:
    """Presigns S3 GetObject URLs (SigV4, query string) for the buckets of one endpoint."""

    def __init__(self, client: Any, credentials: Any) -> None:
        self._client = client  # a boto3 S3 client: asked once per bucket for the URL's form
        self._credentials = credentials  # botocore (refreshable) credentials
        self._bases: dict[str, tuple[str, str, str, str]] = {}
        self._signing_keys: dict[tuple[str, str, str], bytes] = {}
        self._token = ("", "")  # the session token and its quoted form
        self._lock = threading.Lock()

    def _base(self, bucket: str) -> tuple[str, str, str, str]:
        """(scheme://netloc, path prefix, host header, signing region) of `bucket`'s objects."""
        base = self._bases.get(bucket)
        if base is None:
            probe = self._client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": _PROBE_KEY}, ExpiresIn=1
            )
            parts = urlsplit(probe)
            prefix = parts.path[: -len(_PROBE_KEY)]  # "/" or "/bucket/"
            credential = parse_qs(parts.query)["X-Amz-Credential"][0]
            region = credential.split("/")[2]
            host = parts.netloc
            if (parts.scheme, parts.port) in (("http", 80), ("https", 443)):
                host = parts.hostname or host
            base = (f"{parts.scheme}://{parts.netloc}", prefix, host, region)
            with self._lock:
                self._bases[bucket] = base
        return base

    def _signing_key(self, secret: str, day: str, region: str) -> bytes:
        cached = self._signing_keys.get((secret, day, region))
        if cached is None:
            cached = hmac.new(("AWS4" + secret).encode(), day.encode(), hashlib.sha256).digest()
            for part in (region, "s3", "aws4_request"):
                cached = hmac.new(cached, part.encode(), hashlib.sha256).digest()
            with self._lock:
                if len(self._signing_keys) > 16:
                    self._signing_keys.clear()
                self._signing_keys[(secret, day, region)] = cached
        return cached

    def presign(self, bucket: str, key: str, expires: int, now: datetime | None = None) -> str:
        """A GET URL of `bucket`/`key` valid for `expires` seconds from `now`."""
        origin, prefix, host, region = self._base(bucket)
        credentials = self._credentials.get_frozen_credentials()
        amz_date = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        path = prefix + _quote(key, safe="/~")
        # The canonical query string: parameters sorted by name, values percent-encoded (the
        # date and expiry need no escaping; the credential and token are quoted once).
        query = (
            f"X-Amz-Algorithm={_ALGORITHM}"
            f"&X-Amz-Credential={_quote(credentials.access_key)}%2F{day}%2F{region}"
            f"%2Fs3%2Faws4_request&X-Amz-Date={amz_date}&X-Amz-Expires={int(expires)}"
        )
        if credentials.token:
            query += f"&X-Amz-Security-Token={self._quoted_token(credentials.token)}"
        query += "&X-Amz-SignedHeaders=host"
        canonical = f"GET\n{path}\n{query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD"
        to_sign = (
            f"{_ALGORITHM}\n{amz_date}\n{day}/{region}/s3/aws4_request\n"
            f"{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        signing_key = self._signing_key(credentials.secret_key, day, region)
        signature = hmac.digest(signing_key, to_sign.encode(), "sha256").hex()
        return f"{origin}{path}?{query}&X-Amz-Signature={signature}"

    def _quoted_token(self, token: str) -> str:
        if self._token[0] != token:
            self._token = (token, _quote(token))
        return self._token[1]


def _create_signer(endpoint_url: str, region: str) -> S3Signer | None:
    """A signer for one S3 endpoint (empty: boto3's own, e.g. AWS or AWS_ENDPOINT_URL_S3)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region or None)
    credentials = session.get_credentials()
    if credentials is None:
        log.warning(
            "no AWS credentials: download links of S3 outputs cannot be signed",
            extra={"endpoint": endpoint_url or "aws"},
        )
        return None
    client = session.client(
        "s3", endpoint_url=endpoint_url or None, config=Config(signature_version="s3v4")
    )
    return S3Signer(client, credentials)


class DownloadLinks:
    """Download URLs of a render's output and thumbnail, made when the render is read.

    Create one per process (it holds the boto3 clients) and call `warm` off the event
    loop at start-up, so the first read does not wait for credentials.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._ttl = settings.download_url_ttl_seconds
        self._signers: dict[str, S3Signer | None] = {}
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Create the signers the configuration uses (blocking: credentials, endpoints)."""
        if self._settings.effective_storage_url.startswith("s3://"):
            self._signer(S3)
        if self._settings.lambda_configured or self._settings.lambda_bucket:
            self._signer(LAMBDA)

    def _signer(self, storage: str) -> S3Signer | None:
        if storage in self._signers:
            return self._signers[storage]
        with self._lock:
            if storage not in self._signers:
                endpoint = self._settings.s3_endpoint_url if storage == S3 else ""
                self._signers[storage] = _create_signer(endpoint, self._settings.aws_region)
            return self._signers[storage]

    def url(self, stored: StoredObject, now: datetime | None = None) -> str:
        """A download URL of a stored object ("" when it cannot be signed)."""
        if stored.storage == LOCAL:
            return (Path(stored.location) / stored.key).as_uri()
        signer = self._signer(stored.storage)
        if signer is None:
            return ""
        return signer.presign(stored.location, stored.key, self._ttl, now)

    def _link(self, render: Render, key: str | None, url: str | None) -> str:
        storage, location = render.storage, render.storage_location
        if storage in STORAGES and key and location:
            return self.url(StoredObject(storage, location, key))
        return url or ""  # a permanent URL, or a row from before 0002

    def output_url(self, render: Render) -> str:
        """The download URL of a render's output."""
        return self._link(render, render.output_key, render.output_url)

    def thumbnail_url(self, render: Render) -> str:
        """The download URL of a render's thumbnail."""
        return self._link(render, render.thumbnail_key, render.thumbnail_url)

    def captions_url(self, render: Render) -> str:
        """The download URL of a render's WebVTT captions sidecar ("" without one). Beside
        a public output (no `storage`), the sidecar is public too: its URL is the output's
        with the sidecar's key in place of the output's."""
        if render.storage in STORAGES:
            return self._link(render, render.captions_key, None)
        return _neighbour_url(render.output_url, render.output_key, render.captions_key)


def _neighbour_url(url: str | None, key: str | None, other_key: str | None) -> str:
    """The URL of object `other_key` in the bucket of the object at plain URL `url` (whose
    key is `key`), or "" if `url` does not end in `key`."""
    if not (url and key and other_key):
        return ""
    base = url.split("?", 1)[0]
    return base[: -len(key)] + other_key if base.endswith(key) else ""
