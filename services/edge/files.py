"""Download links: a render's output and thumbnail, fetched as the caller.

The edge asks render_api for the render (so only its owner gets it), then redirects to
the signed http(s) URL (S3, R2, Lambda's bucket), or, with local-disk storage (the
embedded default), streams the file when it lies under the storage directory.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from render.v1 import render_pb2
from starlette.responses import FileResponse, RedirectResponse, Response

from render_common.config import Settings
from render_common.errors import NotFound


class RenderFiles:
    """Resolves a render's URLs into something a browser can fetch."""

    def __init__(self, settings: Settings) -> None:
        url = settings.effective_storage_url
        self.local_root = (
            Path(unquote(urlsplit(url).path)).resolve() if url.startswith("file://") else None
        )

    def response(self, render: render_pb2.Render, which: str) -> Response:
        """The output (`which` = output) or thumbnail of a render, or NotFound."""
        url = render.output_url if which == "output" else render.thumbnail_url
        if not url:
            raise NotFound(f"render {render.render_id} has no {which} yet", reason="NO_OUTPUT")
        parts = urlsplit(url)
        if parts.scheme in ("http", "https"):
            return RedirectResponse(url, status_code=302)
        if parts.scheme == "file" and self.local_root is not None:
            path = Path(unquote(parts.path)).resolve()
            if path.is_relative_to(self.local_root) and path.is_file():
                disposition = "attachment" if which == "output" else "inline"
                return FileResponse(
                    path,
                    filename=f"{render.render_id}{path.suffix}",
                    content_disposition_type=disposition,
                    headers={"cache-control": "private, max-age=300"},
                )
        raise NotFound(f"the {which} of render {render.render_id} is not reachable from here")
