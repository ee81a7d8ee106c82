"""The fake Remotion function's data: its plan, its renders, and the payloads it answers
and posts in Remotion's shapes (tests/support/fake_lambda.py serves them)."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

CANCEL_CHECK_SECONDS = 0.5  # how stale the fake's view of cancel.json may be


class S3Like(Protocol):
    """Where the fake keeps its objects (tests.support.s3_server.S3Server, or its URL)."""

    endpoint: str

    def client(self) -> Any:
        """A boto3 S3 client."""
        ...


@dataclass
class Plan:
    """How the next renders behave."""

    seconds: float = 1.5  # time from start to the end
    seconds_max: float = 0.0  # > seconds: each render's time drawn from [seconds, seconds_max]
    outcome: str = "success"  # success | fatal | timeout | asset_error (poll it: no webhook)
    webhook: bool = True  # post the webhook at the end (when the start asked for one)
    webhook_delay: float = 0.0  # extra delay before the webhook (a late webhook)
    webhook_times: int = 1  # 2: the webhook is posted twice
    throttle_starts: int = 0  # answer this many starts with 429 TooManyRequestsException
    max_concurrent: int = 0  # > 0: a start while this many renders run gets a 429
    start_delay: float = 0.0  # answer an accepted start this late (the render runs already)

    def duration(self) -> float:
        """One render's time from start to end."""
        if self.seconds_max > self.seconds:
            return random.uniform(self.seconds, self.seconds_max)
        return self.seconds


@dataclass
class FakeRender:
    """One render the fake function runs."""

    render_id: str
    bucket: str
    params: dict[str, Any]
    plan: Plan
    started: float = field(default_factory=time.monotonic)
    webhook_sent: threading.Event = field(default_factory=threading.Event)
    webhook_responses: list[int] = field(default_factory=list)
    seconds: float = 0.0  # its duration (drawn from the plan)
    output: tuple[str, int] | None = None  # written once, when it ends
    cancel_seen: bool = False
    cancel_checked: float = 0.0

    @property
    def ends(self) -> float:
        return self.started + self.seconds

    def running(self, now: float) -> bool:
        return now < self.ends and not self.cancel_seen

    @property
    def frames(self) -> int:
        props = json.loads(self.params["inputProps"]["payload"])
        return sum(int(s["durationInFrames"]) for s in props["scenes"])

    @property
    def out_key(self) -> str:
        return f"renders/{self.render_id}/{self.params['outName']}"


def calculate_signature(body: str, secret: str | None) -> str:
    """Remotion's calculateSignature (invoke-webhook.ts)."""
    if not secret:
        return "NO_SECRET_PROVIDED"
    return "sha512=" + hmac.new(secret.encode(), body.encode(), hashlib.sha512).hexdigest()


def js_stringify(value: Any) -> str:
    """JSON.stringify's output for plain JSON values."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def render_metadata(render: FakeRender) -> dict[str, Any]:
    """RenderProgress.renderMetadata: what the render was started with."""
    return {
        "compositionId": render.params["composition"],
        "codec": render.params["codec"],
        "type": "video",
        "framesPerLambda": render.params["framesPerLambda"],
        "dimensions": {
            "width": render.params["forceWidth"],
            "height": render.params["forceHeight"],
        },
        "renderId": render.render_id,
        "outName": render.params["outName"],
        "privacy": render.params["privacy"],
    }


def progress_payload(
    render: FakeRender,
    *,
    share: float,
    elapsed: float,
    errors: list[dict[str, Any]],
    fatal: bool,
    done: bool,
    output: str | None,
    size: int | None,
) -> dict[str, Any]:
    """Remotion's RenderProgress for a render `share` of the way through."""
    frames = render.frames
    return {
        "type": "success",
        "overallProgress": share,
        "chunks": int(share * 4),
        "done": done,
        "encodingStatus": {"framesEncoded": frames} if done else None,
        "costs": {
            "accruedSoFar": round(0.0001 + 0.002 * share, 6),
            "displayCost": f"${0.0001 + 0.002 * share:.4f}",
            "currency": "USD",
            "disclaimer": "Estimated cost for function invocations only.",
        },
        "renderId": render.render_id,
        "renderMetadata": render_metadata(render),
        "bucket": render.bucket,
        "outputFile": output,
        "outKey": render.out_key if done else None,
        "outBucket": render.bucket if done else None,
        "timeToFinish": int(render.seconds * 1000) if done else None,
        "errors": errors,
        "fatalErrorEncountered": fatal,
        "currentTime": int(time.time() * 1000),
        "renderSize": size or 0,
        "lambdasInvoked": 4,
        "cleanup": None,
        "timeToFinishChunks": None,
        "timeToRenderFrames": None,
        "retriesInfo": [],
        "mostExpensiveFrameRanges": None,
        "outputSizeInBytes": size,
        "estimatedBillingDurationInMilliseconds": int(elapsed * 1000),
        "timeToCombine": None,
        "combinedProgress": share,
        "timeoutTimestamp": int(time.time() * 1000) + 900_000,
        "functionLaunched": True,
        "serveUrlOpened": True,
        "compositionValidated": True,
        "artifacts": [],
        "framesRendered": int(share * frames),
    }


def webhook_payload(
    render: FakeRender, custom_data: Any, output: str, costs: dict[str, Any]
) -> dict[str, Any]:
    """The body Remotion posts when the render ends, as its plan's outcome says."""
    base = {
        "renderId": render.render_id,
        "expectedBucketOwner": "123456789012",
        "bucketName": render.bucket,
        "customData": custom_data,
    }
    if render.plan.outcome == "success":
        payload = {
            "type": "success",
            **base,
            "outputUrl": output,
            "lambdaErrors": [],
            "outputFile": output,
            "timeToFinish": int(render.seconds * 1000),
            "costs": costs,
        }
    elif render.plan.outcome == "fatal":
        payload = {
            "type": "error",
            **base,
            "errors": [
                {
                    "message": "TypeError: Cannot read properties of undefined (reading 'x')",
                    "name": "TypeError",
                    "stack": "TypeError: Cannot read properties of undefined\n    at f",
                }
            ],
        }
    else:
        payload = {"type": "timeout", **base}
    return payload


def fatal_entry(render: FakeRender) -> dict[str, Any]:
    """The error of a render whose plan fails it: the composition throwing, or (outcome
    asset_error) an image failing to load, naming its src as Remotion's <Img> does."""
    if render.plan.outcome != "asset_error":
        return error_entry("TypeError: Cannot read properties of undefined (reading 'x')")
    src = json.loads(render.params["inputProps"]["payload"])["scenes"][0]["props"]["src"]
    return error_entry(f"Error loading image with src: {src}")


def error_entry(message: str) -> dict[str, Any]:
    return {
        "type": "renderer",
        "message": message,
        "name": "Error",
        "stack": f"Error: {message}\n    at renderer",
        "frame": 12,
        "chunk": 0,
        "isFatal": True,
        "attempt": 1,
        "willRetry": False,
        "totalAttempts": 1,
        "tmpDir": None,
    }


class FunctionServer(Protocol):
    """What the fake function's HTTP handler serves (tests.support.fake_lambda.FakeRemotionLambda)."""

    plan: Plan

    def stats(self) -> dict[str, Any]: ...

    def starts(self) -> list[dict[str, Any]]: ...

    def set_plan(self, changes: dict[str, Any]) -> None: ...

    def invoke(self, function: str, payload: dict[str, Any]) -> tuple[int, Any, str]: ...


def handler_for(owner: FunctionServer) -> type[BaseHTTPRequestHandler]:
    """The HTTP handler of the Lambda Invoke API (and the test's /_fake/ controls) for
    `owner`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/_fake/stats":
                self._send(200, owner.stats())
            elif self.path == "/_fake/starts":
                self._send(200, owner.starts())
            else:
                self._send(404, {"message": "unknown path"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/_fake/plan":
                owner.set_plan(json.loads(body))
                self._send(200, asdict(owner.plan))
                return
            parts = self.path.split("/")
            # /2015-03-31/functions/{name}/invocations
            if len(parts) != 5 or parts[2] != "functions" or parts[4] != "invocations":
                self._send(404, {"message": "unknown path"})
                return
            status, answer, error_type = owner.invoke(parts[3], json.loads(body))
            self._send(status, answer, error_type)

        def _send(self, status: int, answer: Any, error_type: str = "") -> None:
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if error_type:
                self.send_header("x-amzn-ErrorType", error_type)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
