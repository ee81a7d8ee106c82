"""Where outputs go: a local directory (default) or S3/R2 through boto3.

Keys are `renders/{project_id}/{render_id}.{ext}` and `.jpg` for the thumbnail; writing the
same key twice replaces the object, so a redelivered render never leaves a second output.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from render_common.config import Settings


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An uploaded object: its key and a URL to download it."""

    key: str
    url: str


class Storage(Protocol):
    """Put files and hand out download URLs."""

    async def put(
        self,
        path: Path,
        key: str,
        *,
        content_type: str,
        metadata: dict[str, str],
        download_name: str,
    ) -> StoredObject:
        """Upload `path` as `key`."""
        ...


def output_key(project_id: str, render_id: str, extension: str) -> str:
    """The key of a render's output (or thumbnail, with extension jpg)."""
    return f"renders/{project_id}/{render_id}.{extension}"


class LocalStorage:
    """A directory on local disk; URLs are file:// URLs."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def put(
        self,
        path: Path,
        key: str,
        *,
        content_type: str,
        metadata: dict[str, str],
        download_name: str,
    ) -> StoredObject:
        """Copy into place atomically (temp file then rename)."""
        target = self.root / key
        await asyncio.to_thread(self._copy, path, target)
        return StoredObject(key=key, url=target.resolve().as_uri())

    @staticmethod
    def _copy(source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.partial")
        shutil.copyfile(source, temporary)
        temporary.replace(target)


class S3Storage:
    """An S3 bucket (or R2/MinIO with S3_ENDPOINT_URL); presigned GET URLs."""

    def __init__(
        self, bucket: str, prefix: str, *, endpoint_url: str, region: str, expiry: int
    ) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.expiry = expiry
        self._client: Any = boto3.client(
            "s3", endpoint_url=endpoint_url or None, region_name=region or None
        )

    async def put(
        self,
        path: Path,
        key: str,
        *,
        content_type: str,
        metadata: dict[str, str],
        download_name: str,
    ) -> StoredObject:
        """Upload (multipart for large files) with metadata, then presign a download URL."""
        full_key = f"{self.prefix}/{key}" if self.prefix else key
        extra = {
            "ContentType": content_type,
            "Metadata": metadata,
            "ContentDisposition": f'attachment; filename="{download_name}"',
        }
        await asyncio.to_thread(
            self._client.upload_file, str(path), self.bucket, full_key, ExtraArgs=extra
        )
        url = await asyncio.to_thread(
            self._client.generate_presigned_url,
            "get_object",
            Params={"Bucket": self.bucket, "Key": full_key},
            ExpiresIn=self.expiry,
        )
        return StoredObject(key=full_key, url=str(url))


def create_storage(settings: Settings) -> Storage:
    """The storage STORAGE_URL names."""
    url = settings.effective_storage_url
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        return S3Storage(
            parsed.netloc,
            parsed.path,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.aws_region,
            expiry=settings.presign_expiry_seconds,
        )
    return LocalStorage(Path(parsed.path))
