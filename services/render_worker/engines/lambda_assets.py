"""Lambda renders' assets: fetched by the worker, staged in the Remotion bucket, signed.

Remotion Lambda would fetch each asset URL itself and follow redirects without asking
anyone, so a URL that redirects (or DNS-rebinds) to 127.0.0.1, 169.254.169.254 or 10.x
would reach those addresses from inside AWS. Instead the worker fetches every remote
asset a render uses (the catalogue's asset props and the soundtrack) with the SSR
engine's AssetFetcher (address policy on every connection and every redirect hop, size
limit, timeouts, cache), uploads each copy with its Content-Type to
`render-assets/{render_id}/{cached name}` in the Remotion bucket, and sends Lambda the
props rewritten to presigned GET URLs of those copies, valid for the render's whole time.

A forbidden address anywhere fails the render with ASSET_FORBIDDEN (not retried) before
anything is invoked. The keys depend only on the render and the URL, so a retry re-stages
over the same objects; each URL is staged once per render, at most STAGE_PARALLELISM
assets at a time per worker. The copies are deleted when the render ends (success,
cancel, or a failure not retried); a bucket lifecycle rule on `render-assets/` removes
whatever a crash leaves behind (README "Lambda engine").
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from render_common.config import Settings
from render_common.scene_assets import AssetCatalogue
from services.render_worker.assets import AssetFetcher
from services.render_worker.engines.base import RenderJob
from services.render_worker.engines.ssr import client_urls
from services.render_worker.failures import RenderFailure
from services.render_worker.media import asset_urls

log = logging.getLogger(__name__)

T = TypeVar("T")
STAGE_PREFIX = "render-assets"
STAGE_PARALLELISM = 8  # assets fetched and uploaded at once, all renders of a worker together
URL_MARGIN_SECONDS = 600  # beyond the render's time limit
MAX_URL_SECONDS = 7 * 24 * 3600  # SigV4's longest presigned URL
REMOTION_BUCKET_PREFIX = "remotionlambda-"


def staged_key(render_id: str, name: str) -> str:
    """The object key of a render's staged copy of an asset (`name`: its cached name)."""
    return f"{STAGE_PREFIX}/{render_id}/{name}"


def url_lifetime(settings: Settings) -> int:
    """Seconds a staged copy's URL stays valid: longer than the render may take."""
    longest = max(settings.render_timeout_seconds, float(settings.lambda_timeout_seconds))
    return min(int(longest) + URL_MARGIN_SECONDS, MAX_URL_SECONDS)


class AssetStager:
    """Fetches, stages and signs Lambda renders' assets; removes them afterwards."""

    def __init__(
        self, fetcher: AssetFetcher, *, assets: AssetCatalogue, settings: Settings
    ) -> None:
        self._fetcher = fetcher
        self._assets = assets
        self._settings = settings
        self._ttl = url_lifetime(settings)
        self._slots = asyncio.Semaphore(STAGE_PARALLELISM)
        self._executor = ThreadPoolExecutor(
            max_workers=STAGE_PARALLELISM, thread_name_prefix="lambda-assets"
        )
        self._lock = threading.Lock()
        self._client: Any = None  # boto3 S3 client, made at the first asset
        self._bucket = settings.lambda_bucket

    async def stage(self, job: RenderJob) -> tuple[RenderJob, dict[str, str]]:
        """The job with every remote asset replaced by a presigned URL of its staged copy,
        and the map of client URL -> presigned URL (to put the client's URLs back into
        error messages).

        A job without assets comes back unchanged (no S3 call). On a failure the copies
        staged so far are removed unless the failure is retried.
        """
        urls = asset_urls(self._assets, job)
        if not urls:
            return job, {}
        tasks = [asyncio.create_task(self._stage_one(job.render_id, url)) for url in urls]
        try:
            signed = await asyncio.gather(*tasks)
        except BaseException as exc:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if isinstance(exc, RenderFailure) and not exc.retryable:
                await self.discard(job)
            raise
        local = dict(zip(urls, signed, strict=True))
        soundtrack = job.soundtrack
        if soundtrack and soundtrack.get("src"):
            soundtrack = {**soundtrack, "src": local[str(soundtrack["src"])]}
        scenes = self._assets.replace(job.scenes, local)
        return dataclasses.replace(job, scenes=scenes, soundtrack=soundtrack), local

    async def discard(self, job: RenderJob) -> None:
        """Delete a render's staged copies (best effort; the lifecycle rule is the backstop)."""
        urls = asset_urls(self._assets, job)
        if not urls:
            return
        keys = [staged_key(job.render_id, self._fetcher.cached_name(url)) for url in urls]
        try:
            await self._call(self._delete, keys)
        except Exception as exc:  # cleanup must not change the render's outcome
            log.warning(
                "staged lambda assets not deleted",
                extra={"render_id": job.render_id, "error": str(exc)},
            )

    async def failed(
        self, job: RenderJob, exc: BaseException, signed: dict[str, str]
    ) -> BaseException:
        """What to raise after `exc` ended a Lambda render's attempt: a failure names the
        client's URLs, not the signed copies. The copies are removed after a failure that
        ends the render (not one retried, nor a hand-back or lost lease, after which
        another worker follows the same render)."""
        if not isinstance(exc, RenderFailure):
            return exc
        if not exc.retryable:
            await self.discard(job)
        return client_urls(exc, signed)

    def close(self) -> None:
        """Stop the upload threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _stage_one(self, render_id: str, url: str) -> str:
        async with self._slots:
            name = await self._fetcher.fetch(url)  # every hop checked, size and time bounded
            key = staged_key(render_id, name)
            content_type = self._fetcher.content_type(name)
            path = str(self._fetcher.cache_dir / name)
            try:
                return await self._call(self._upload, path, key, content_type)
            except RenderFailure:
                raise
            except Exception as exc:
                raise RenderFailure(
                    "ASSET_UNAVAILABLE",
                    f"asset could not be staged for Lambda ({type(exc).__name__}: {exc}): {url}",
                    retryable=True,
                ) from exc

    async def _call(self, call: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(call, *args))

    def _upload(self, path: str, key: str, content_type: str) -> str:
        """Blocking: upload one copy, then sign its GET URL."""
        client, bucket = self._s3()
        client.upload_file(path, bucket, key, ExtraArgs={"ContentType": content_type})
        return str(
            client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=self._ttl
            )
        )

    def _delete(self, keys: list[str]) -> None:
        client, bucket = self._s3()
        client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
        )

    def _s3(self) -> tuple[Any, str]:
        """The S3 client (boto3's endpoint settings, e.g. AWS_ENDPOINT_URL_S3) and bucket."""
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                session = boto3.session.Session(region_name=self._settings.aws_region)
                self._client = session.client(
                    "s3",
                    config=Config(
                        signature_version="s3v4",
                        max_pool_connections=STAGE_PARALLELISM * 2,
                        retries={"total_max_attempts": 3, "mode": "standard"},
                    ),
                )
            if not self._bucket:
                self._bucket = self._find_bucket(self._client)
            return self._client, self._bucket

    def _find_bucket(self, client: Any) -> str:
        """The region's Remotion bucket, found as the SDK finds it (REMOTION_BUCKET unset)."""
        region = self._settings.aws_region.replace("-", "")
        prefix = f"{REMOTION_BUCKET_PREFIX}{region}-"
        names = sorted(str(b["Name"]) for b in client.list_buckets().get("Buckets", []))
        found = [name for name in names if name.startswith(prefix)]
        if not found:
            raise RenderFailure(
                "LAMBDA_REJECTED",
                f"no Remotion bucket ({prefix}*) to stage assets in; set REMOTION_BUCKET",
                retryable=False,
            )
        return found[0]
