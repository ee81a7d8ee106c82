"""Where outputs go: a local directory (default) or S3/R2 through boto3.

Keys are `renders/{project_id}/{render_id}.{ext}` and `.jpg` for the thumbnail; writing the
same key twice replaces the object, so a redelivered render never leaves a second output.
`put` says where the object is (storage, root or bucket, key), which the row stores;
download links are made when a render is read (render_common/downloads.py), never here.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from render_common.config import Settings
from render_common.downloads import LOCAL, S3, StoredObject


class Storage(Protocol):
    """Put files; say where they are."""

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
    """A directory on local disk (links are the files' file:// URLs)."""

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
        return StoredObject(LOCAL, str(self.root.resolve()), key)

    @staticmethod
    def _copy(source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.partial")
        shutil.copyfile(source, temporary)
        temporary.replace(target)


class S3Storage:
    """An S3 bucket (or R2/MinIO with S3_ENDPOINT_URL); links are presigned when read.
    `acl`: a canned ACL for every object put ("public-read" beside a public Lambda output,
    whose links are plain object URLs); None leaves the bucket's default."""

    def __init__(
        self, bucket: str, prefix: str, *, endpoint_url: str, region: str, acl: str | None = None
    ) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.acl = acl
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
        """Upload (multipart for large files) with metadata."""
        full_key = f"{self.prefix}/{key}" if self.prefix else key
        extra = {
            "ContentType": content_type,
            "Metadata": metadata,
            "ContentDisposition": f'attachment; filename="{download_name}"',
        }
        if self.acl:
            extra["ACL"] = self.acl
        await asyncio.to_thread(
            self._client.upload_file, str(path), self.bucket, full_key, ExtraArgs=extra
        )
        return StoredObject(S3, self.bucket, full_key)


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
        )
    return LocalStorage(Path(parsed.path))
