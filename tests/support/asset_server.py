"""A local HTTP server of test assets: images, a clip, errors, redirects and slow answers.

Paths (the query string is ignored for matching, kept in `requests`):
- `/image...` an 8x8 PNG; `/clip...` a 10-frame H.264 MP4; `/missing...` 404;
- `/flaky-N...` 503 once, then the image;
- `/redirect/<path>` 302 to `/<path>` (query kept); `/redirect-to?url=U` 302 to `U`;
- `/slow/<seconds>/<path>` waits that long before answering as `/<path>`;
- `/trickle...` headers at once, then one byte of a large body every 50 ms;
- `/broken...` 200 `image/png` that is not an image (the browser fails to load it);
- `/tone-<seconds>s...` a 440 Hz sine of that length as WAV; `/sound-clip...` a 1 s MP4
  with a sine tone (tests/support/audio.py).
"""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile
import threading
import time
import zlib
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.support import audio
from tests.support.audio import COMPOSITOR


def tiny_png(width: int = 8, height: int = 8) -> bytes:
    """A small valid RGB PNG."""
    raw = b"".join(b"\x00" + b"\x33\x66\x99" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return (
            struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@cache
def tiny_mp4(frames: int = 10) -> bytes:
    """A small H.264 MP4 (64x36, 30 fps), encoded by Remotion's bundled ffmpeg."""
    with tempfile.TemporaryDirectory(prefix="render-test-clip-") as work:
        target = Path(work) / "clip.mp4"
        subprocess.run(
            [
                str(COMPOSITOR / "ffmpeg"),
                "-hide_banner",
                "-loglevel",
                "error",
                "-f",
                "image2pipe",
                "-framerate",
                "30",
                "-c:v",
                "png",
                "-i",
                "-",
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                "-movflags",
                "+faststart",
                str(target),
            ],
            input=tiny_png(64, 36) * frames,
            capture_output=True,
            check=True,
            env={**os.environ, "LD_LIBRARY_PATH": str(COMPOSITOR)},
        )
        return target.read_bytes()


class _AssetHandler(BaseHTTPRequestHandler):
    """Answers one request of an AssetServer (`self.server.owner`)."""

    server: _Server

    def do_GET(self) -> None:
        self.server.owner.requests.append(self.path)
        parts = urlsplit(self.path)
        self._answer(parts.path, parts.query)

    def _answer(self, path: str, query: str) -> None:
        owner = self.server.owner
        if path.startswith("/redirect/"):
            target = path[len("/redirect") :] + (f"?{query}" if query else "")
            self._status(302, Location=target, **{"Content-Length": "0"})
        elif path == "/redirect-to":
            self._status(302, Location=parse_qs(query)["url"][0], **{"Content-Length": "0"})
        elif path.startswith("/slow/"):
            _, _, seconds, rest = path.split("/", 3)
            time.sleep(float(seconds))
            self._answer(f"/{rest}", query)
        elif path.startswith("/trickle"):
            self._trickle()
        elif path.startswith("/flaky") and owner.failures.get(path, 1) > 0:
            owner.failures[path] = owner.failures.get(path, 1) - 1
            self._status(503)
        elif path.startswith(("/image", "/flaky")):
            self._send(owner.png, "image/png")
        elif path.startswith("/clip"):
            self._send(owner.clip, "video/mp4")
        elif path.startswith(("/tone-", "/sound-clip")):
            self._send(*audio.served(path))
        elif path.startswith("/broken"):
            self._send(b"this is not an image" * 10, "image/png")
        else:
            self._status(404)

    def _status(self, code: int, **headers: str) -> None:
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send(self, body: bytes, content_type: str) -> None:
        self._status(200, **{"Content-Type": content_type, "Content-Length": str(len(body))})
        self.wfile.write(body)

    def _trickle(self) -> None:
        self._status(200, **{"Content-Type": "image/png", "Content-Length": "100000"})
        try:
            for _ in range(100000):
                self.wfile.write(b"\x00")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass  # the client gave up

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def __init__(self, owner: AssetServer) -> None:
        super().__init__(("127.0.0.1", 0), _AssetHandler)
        self.owner = owner


class AssetServer:
    """Serves the paths listed in the module docstring on 127.0.0.1 (a free port)."""

    def __init__(self) -> None:
        self.failures: dict[str, int] = {}
        self.requests: list[str] = []
        self.png = tiny_png()
        self.clip = tiny_mp4()
        self.server = _Server(self)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """Absolute URL of a path on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        """The paths requested so far (query strings dropped)."""
        return [urlsplit(p).path for p in self.requests]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
