"""The composition's inputs besides the scenes: the soundtrack and the burned-in captions.

Both engines build the composition's props here, so SSR and Lambda render the same
timeline. The soundtrack's URL is an asset like the scenes' (prefetched by SSR, fetched
and staged for Lambda: engines/lambda_assets.py); captions reach the composition only when they are
burned in (the .vtt sidecar is the worker's, see services/render_worker/sidecar.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from render_common.scene_assets import AssetCatalogue
from services.render_worker.engines.base import RenderJob


def asset_urls(assets: AssetCatalogue, job: RenderJob) -> list[str]:
    """The distinct asset URLs of a job: the scenes' asset props, then the soundtrack."""
    urls = assets.urls(job.scenes)
    if job.soundtrack and job.soundtrack.get("src"):
        urls.append(str(job.soundtrack["src"]))
    return list(dict.fromkeys(urls))


def input_props(
    job: RenderJob, scenes: list[dict[str, Any]], local: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """MainComposition's props; `local` maps asset URLs to the render host's copies. The
    output's size, fps and alpha size the composition (its calculateMetadata, Root.tsx)."""
    shape = job.output
    props: dict[str, Any] = {
        "scenes": scenes,
        "projectId": job.project_id,
        "width": shape.width,
        "height": shape.height,
        "fps": shape.fps,
        "transparent": shape.transparent,
    }
    if job.soundtrack:
        src = str(job.soundtrack["src"])
        props["soundtrack"] = {**job.soundtrack, "src": (local or {}).get(src, src)}
    if job.captions and job.captions.get("burn"):
        props["captions"] = {"cues": job.captions["cues"], "style": job.captions["style"]}
    return props
