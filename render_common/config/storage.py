"""Settings of assets fetched for scenes and of stored outputs."""

from __future__ import annotations

from pydantic import BaseModel

from render_common.config.base import MAX_DOWNLOAD_URL_TTL_SECONDS, CommaSeparated


class StorageSection(BaseModel):
    """Scene assets (size, time, networks) and where outputs are stored and signed."""

    asset_max_bytes: int = 512 << 20  # ASSET_MAX_BYTES
    asset_timeout_seconds: float = 30.0  # ASSET_TIMEOUT_SECONDS
    asset_allowed_networks: CommaSeparated = ()  # ASSET_ALLOWED_NETWORKS: CIDRs exempt

    storage_url: str = ""  # STORAGE_URL: file:///dir or s3://bucket/prefix; default data_dir
    s3_endpoint_url: str = ""  # S3_ENDPOINT_URL (R2, MinIO, moto)
    # DOWNLOAD_URL_TTL_SECONDS: lifetime of the download links signed each time a render is
    # read (S3 and private Lambda outputs); SigV4 allows at most 7 days.
    download_url_ttl_seconds: int = MAX_DOWNLOAD_URL_TTL_SECONDS
