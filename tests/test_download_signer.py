"""The download link signer: boto3's presigned URLs without boto3 per link, and the TTL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest
from botocore.config import Config

from render_common.config import ConfigError, Settings
from render_common.downloads import LOCAL, DownloadLinks, S3Signer, StoredObject


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9000", "https://r2.example.com", ""])
@pytest.mark.parametrize("key", ["videos/renders/p/abc.mp4", "a b/ü+x=y&z~.mp4"])
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdz/EAo+session=="])
def test_signer_gives_botocores_url(endpoint: str, key: str, token: str | None) -> None:
    """The same URL as boto3's generate_presigned_url at the same second (temporary
    credentials too)."""
    session = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        aws_session_token=token,
        region_name="eu-west-1",
    )
    client = session.client(
        "s3", endpoint_url=endpoint or None, config=Config(signature_version="s3v4")
    )
    signer = S3Signer(client, session.get_credentials())
    while True:
        now = datetime.now(UTC)
        expected = client.generate_presigned_url(
            "get_object", Params={"Bucket": "exports", "Key": key}, ExpiresIn=604800
        )
        ours = signer.presign("exports", key, 604800, now)
        if datetime.now(UTC).replace(microsecond=0) == now.replace(microsecond=0):
            break
    assert urlsplit(ours)[:3] == urlsplit(expected)[:3]
    assert sorted(parse_qsl(urlsplit(ours).query)) == sorted(parse_qsl(urlsplit(expected).query))


def test_ttl_is_bounded_by_sigv4s_seven_days() -> None:
    assert Settings.from_env({}).download_url_ttl_seconds == 7 * 24 * 3600
    assert Settings.from_env({"DOWNLOAD_URL_TTL_SECONDS": "60"}).download_url_ttl_seconds == 60
    for bad in ("0", "604801"):
        with pytest.raises(ConfigError, match="DOWNLOAD_URL_TTL_SECONDS"):
            Settings.from_env({"DOWNLOAD_URL_TTL_SECONDS": bad})


def test_local_link_is_the_files_url(tmp_path: Path) -> None:
    links = DownloadLinks(Settings(data_dir=str(tmp_path)))
    stored = StoredObject(LOCAL, str(tmp_path / "out dir"), "renders/p/r.mp4")
    assert links.url(stored) == (tmp_path / "out dir" / "renders/p/r.mp4").as_uri()
