"""A local server speaking the AWS Lambda Invoke API that behaves like a Remotion function.

boto3 reaches it through `AWS_ENDPOINT_URL_LAMBDA`; it keeps its objects (progress.json,
cancel.json, the output file) in a real S3-API server (moto), as the function does in its
bucket, so `cancel_render_on_lambda` works unchanged.

- `start` answers `{type: success, renderId, bucketName}` and begins a render that advances
  with time over `Plan.seconds`, then succeeds (output object written), fails fatally, or
  times out, as the plan says.
- `status` answers Remotion's RenderProgress shape (overallProgress, framesRendered, done,
  outputFile, outputSizeInBytes, renderMetadata, costs, errors, fatalErrorEncountered).
- When the render ends it posts the webhook the way Remotion does: JSON.stringify'd body,
  `X-Remotion-Signature: sha512=<HMAC-SHA512 hex>` (or NO_SECRET_PROVIDED),
  `X-Remotion-Status`, retried twice on failure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import random
import string
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.support.fake_lambda_still import FakeStills, render_still
from tests.support.processes import free_port
from tests.support.s3_server import S3Server

REMOTION_VERSION = "4.0.527"
FUNCTION_NAME = "remotion-render-4-0-527-mem3008mb-disk10240mb-900sec"
BUCKET = "remotionlambda-useast1-testbucket"


@dataclass
class Plan:
    """How the next renders behave."""

    seconds: float = 1.5  # time from start to the end
    outcome: str = "success"  # success | fatal | timeout
    webhook: bool = True  # post the webhook at the end (when the start asked for one)
    webhook_delay: float = 0.0  # extra delay before the webhook
    throttle_starts: int = 0  # answer this many starts with 429 TooManyRequestsException


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


class FakeRemotionLambda:
    """The fake function plus its HTTP server (`endpoint` for AWS_ENDPOINT_URL_LAMBDA)."""

    def __init__(self, s3: S3Server) -> None:
        self.s3 = s3
        self.plan = Plan()
        self.renders: dict[str, FakeRender] = {}
        self.invocations: list[dict[str, Any]] = []
        self.stills = FakeStills()  # renderStillOnLambda (fake_lambda_still.py)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        s3.client().create_bucket(Bucket=BUCKET)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
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

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    # -- the function -------------------------------------------------------------------

    def invoke(self, function: str, payload: dict[str, Any]) -> tuple[int, Any, str]:
        """One Invoke call: HTTP status, body, and the AWS error type when failing."""
        with self._lock:
            self.invocations.append(payload)
        if function != FUNCTION_NAME:
            return (
                404,
                {"Type": "User", "message": f"Function not found: {function}"},
                "ResourceNotFoundException",
            )
        if payload.get("version") != REMOTION_VERSION:
            return (
                200,
                {
                    "type": "error",
                    "message": f"Version mismatch: function {REMOTION_VERSION}, "
                    f"client {payload.get('version')}",
                    "stack": "",
                },
                "",
            )
        if payload.get("type") == "start":
            return self._start(payload)
        if payload.get("type") == "status":
            return 200, self._status(payload["renderId"]), ""
        if payload.get("type") == "still":  # renderStillOnLambda: fake_lambda_still.py
            return render_still(self, payload)
        return 200, {"type": "error", "message": "unknown type", "stack": ""}, ""

    def _start(self, payload: dict[str, Any]) -> tuple[int, Any, str]:
        with self._lock:
            if self.plan.throttle_starts > 0:
                self.plan.throttle_starts -= 1
                return (
                    429,
                    {"Type": "User", "message": "Rate Exceeded."},
                    "TooManyRequestsException",
                )
            render_id = "".join(random.choices(string.ascii_lowercase + string.digits, k=10))
            plan = dataclasses.replace(self.plan)
            render = FakeRender(render_id, payload.get("bucketName") or BUCKET, payload, plan)
            self.renders[render_id] = render
        self._put(render, "progress.json", {"cancellationEnabled": True, "renderId": render_id})
        threading.Thread(target=self._finish_later, args=(render,), daemon=True).start()
        return 200, {"type": "success", "renderId": render_id, "bucketName": render.bucket}, ""

    def _status(self, render_id: str) -> dict[str, Any]:
        render = self.renders[render_id]
        elapsed = time.monotonic() - render.started
        share = min(elapsed / render.plan.seconds, 1.0)
        cancelled = self.cancelled(render_id)
        ended = share >= 1.0
        errors: list[dict[str, Any]] = []
        fatal = False
        done = False
        output = None
        size = None
        if cancelled:
            fatal = True
            errors.append(_error("Render was cancelled by cancelRender()"))
        elif ended and render.plan.outcome == "fatal":
            fatal = True
            share = 0.4
            errors.append(_error("TypeError: Cannot read properties of undefined (reading 'x')"))
        elif ended and render.plan.outcome == "timeout":
            fatal = True
            share = 0.4
            errors.append(_error("The main function timed out after 900000ms."))
        elif ended:
            done = True
            output, size = self._output(render)
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
            "renderId": render_id,
            "renderMetadata": {
                "compositionId": render.params["composition"],
                "codec": render.params["codec"],
                "type": "video",
                "framesPerLambda": render.params["framesPerLambda"],
                "dimensions": {
                    "width": render.params["forceWidth"],
                    "height": render.params["forceHeight"],
                },
                "renderId": render_id,
                "outName": render.params["outName"],
                "privacy": render.params["privacy"],
            },
            "bucket": render.bucket,
            "outputFile": output,
            "outKey": render.out_key if done else None,
            "outBucket": render.bucket if done else None,
            "timeToFinish": int(render.plan.seconds * 1000) if done else None,
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

    def _output(self, render: FakeRender) -> tuple[str, int]:
        body = b"\x00\x00\x00\x18ftypmp42" + bytes(2048)
        acl = "public-read" if render.params.get("privacy") == "public" else "private"
        self.s3.client().put_object(Bucket=render.bucket, Key=render.out_key, Body=body, ACL=acl)
        return f"{self.s3.endpoint}/{render.bucket}/{render.out_key}", len(body)

    def _finish_later(self, render: FakeRender) -> None:
        time.sleep(render.plan.seconds + render.plan.webhook_delay)
        webhook = render.params.get("webhook")
        if not webhook or not render.plan.webhook or self.cancelled(render.render_id):
            return
        base = {
            "renderId": render.render_id,
            "expectedBucketOwner": "123456789012",
            "bucketName": render.bucket,
            "customData": webhook.get("customData"),
        }
        if render.plan.outcome == "success":
            output, _ = self._output(render)
            payload = {
                "type": "success",
                **base,
                "outputUrl": output,
                "lambdaErrors": [],
                "outputFile": output,
                "timeToFinish": int(render.plan.seconds * 1000),
                "costs": self._status(render.render_id)["costs"],
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
        self.send_webhook(render, webhook["url"], webhook.get("secret"), payload)

    def send_webhook(
        self, render: FakeRender, url: str, secret: str | None, payload: dict[str, Any]
    ) -> None:
        """POST the webhook as invoke-webhook.ts does (two retries with backoff)."""
        body = js_stringify(payload)
        headers = {
            "Content-Type": "application/json",
            "X-Remotion-Mode": "production",
            "X-Remotion-Signature": calculate_signature(body, secret),
            "X-Remotion-Status": payload["type"],
        }
        for attempt in range(3):
            try:
                response = httpx.post(url, content=body.encode(), headers=headers, timeout=10)
                render.webhook_responses.append(response.status_code)
                if response.is_success:
                    break
            except httpx.HTTPError:
                render.webhook_responses.append(0)
            time.sleep(0.2 * 2**attempt)
        render.webhook_sent.set()

    # -- helpers for tests ----------------------------------------------------------------

    def cancelled(self, render_id: str) -> bool:
        """Whether cancel.json was written for the render (cancel_render_on_lambda)."""
        render = self.renders[render_id]
        try:
            self.s3.client().head_object(
                Bucket=render.bucket, Key=f"renders/{render_id}/cancel.json"
            )
            return True
        except Exception:
            return False

    def starts(self) -> list[dict[str, Any]]:
        """The start payloads received."""
        with self._lock:
            return [p for p in self.invocations if p.get("type") == "start"]

    def _put(self, render: FakeRender, name: str, value: Any) -> None:
        self.s3.client().put_object(
            Bucket=render.bucket,
            Key=f"renders/{render.render_id}/{name}",
            Body=json.dumps(value).encode(),
        )

    def close(self) -> None:
        """Stop the server."""
        self._server.shutdown()
        self._server.server_close()


def _error(message: str) -> dict[str, Any]:
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
