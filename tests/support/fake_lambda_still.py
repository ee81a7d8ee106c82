"""renderStillOnLambda for the fake Remotion function (tests/support/fake_lambda.py).

A `still` invocation puts a JPEG in the bucket as `renders/{renderId}/{outName}` with the
requested privacy and answers as the function does: {type: success, output, outKey,
sizeInBytes, bucketName, renderId, estimatedPrice}. With `fake.stills.real` the frame is
rendered for real (tests/support/remotion_still.mjs: the Remotion renderer and Chromium,
from the render host's bundle; a failure answers {type: error, message}); otherwise, so
that hundreds of Lambda renders stay cheap, it is a small grey placeholder.
"""

from __future__ import annotations

import base64
import json
import random
import string
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from render_common.config import ROOT

if TYPE_CHECKING:
    from tests.support.fake_lambda import FakeRemotionLambda

STILL_SCRIPT = Path(__file__).with_name("remotion_still.mjs")
STILL_TIMEOUT_SECONDS = 300


@dataclass
class FakeStills:
    """How the fake renders stills, and the frames it was asked for."""

    real: bool = False  # render the frame with Remotion (else a placeholder JPEG)
    fail: bool = False  # answer every still with the function's error
    frames: list[int] = field(default_factory=list)


# A 16x9 grey JPEG (made by Remotion's ffmpeg from a PNG), the still of a fake that does
# not render.
PLACEHOLDER_JPEG = base64.b64decode(
    "/9j//gAQTGF2YzYxLjE5LjEwMAD/2wBDAAgEBAQEBAUFBQUFBQYGBgYGBgYGBgYGBgYHBwcICAgHBwcGBgcHCAgI"
    "CAkJCQgICAgJCQoKCgwMCwsODg4RERT/xABKAAEAAAAAAAAAAAAAAAAAAAAAAQEAAAAAAAAAAAAAAAAAAAAAEAEA"
    "AAAAAAAAAAAAAAAAAAAAEQEAAAAAAAAAAAAAAAAAAAAA/8AAEQgACQAQAwESAAISAAMSAP/aAAwDAQACEQMRAD8A"
    "AAAA/9k="
)


def input_props(payload: dict[str, Any]) -> dict[str, Any]:
    """The input props of an invocation (sent inline, as `{type: payload}`)."""
    serialized = payload.get("inputProps") or {}
    if serialized.get("type") == "payload":
        props: dict[str, Any] = json.loads(serialized["payload"])
        return props
    return {}


def render_jpeg(payload: dict[str, Any], output: Path) -> None:
    """Render the invocation's frame to `output` with the real Remotion renderer."""
    request = {
        "composition": payload["composition"],
        "inputProps": input_props(payload),
        "frame": int(payload.get("frame") or 0),
        "width": payload.get("forceWidth"),
        "height": payload.get("forceHeight"),
        "jpegQuality": payload.get("jpegQuality"),
        "output": str(output),
    }
    subprocess.run(
        ["node", str(STILL_SCRIPT)],
        input=json.dumps(request).encode(),
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=STILL_TIMEOUT_SECONDS,
    )


def real_jpeg(payload: dict[str, Any]) -> bytes:
    """The invocation's frame rendered by Remotion, as JPEG bytes."""
    with tempfile.TemporaryDirectory(prefix="fake-lambda-still-") as work:
        jpeg = Path(work) / "still.jpg"
        render_jpeg(payload, jpeg)
        return jpeg.read_bytes()


def render_still(fake: FakeRemotionLambda, payload: dict[str, Any]) -> tuple[int, Any, str]:
    """One `still` invocation: HTTP status, body, AWS error type (none)."""
    render_id = "".join(random.choices(string.ascii_lowercase + string.digits, k=10))
    bucket = payload.get("bucketName") or "remotionlambda-useast1-testbucket"
    key = f"renders/{render_id}/{payload.get('outName') or 'out.jpeg'}"
    fake.stills.frames.append(int(payload.get("frame") or 0))
    if fake.stills.fail:
        return 200, {"type": "error", "message": "renderStill failed: test", "stack": ""}, ""
    if not fake.stills.real:
        body = PLACEHOLDER_JPEG
    else:
        try:
            body = real_jpeg(payload)
        except subprocess.SubprocessError as exc:
            detail = getattr(exc, "stderr", b"") or b""
            message = f"renderStill failed: {detail.decode(errors='replace')[-2000:]}"
            return 200, {"type": "error", "message": message, "stack": ""}, ""
    acl = "public-read" if payload.get("privacy") == "public" else "private"
    fake.s3.client().put_object(
        Bucket=bucket, Key=key, Body=body, ACL=acl, ContentType="image/jpeg"
    )
    return (
        200,
        {
            "type": "success",
            "output": f"{fake.s3.endpoint}/{bucket}/{key}",
            "outKey": key,
            "size": len(body),
            "sizeInBytes": len(body),
            "bucketName": bucket,
            "renderId": render_id,
            "estimatedPrice": {
                "accruedSoFar": 0.00002,
                "displayCost": "$0.0000",
                "currency": "USD",
                "disclaimer": "Estimated cost for function invocations only.",
            },
            "receivedArtifacts": [],
        },
        "",
    )
