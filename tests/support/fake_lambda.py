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
  `X-Remotion-Status`, retried twice on failure; late (`webhook_delay`), twice
  (`webhook_times`) or never (`webhook`).
- Under load: hundreds of renders at once, each lasting a duration drawn from
  [seconds, seconds_max]; with `max_concurrent`, a start while that many renders run is
  refused with HTTP 429 TooManyRequestsException, as Lambda refuses an invocation over
  the concurrency limit; with `start_delay`, an accepted start is answered late (a caller
  whose read times out meanwhile does not know the render runs). One scheduler thread
  ends renders and a small pool posts the webhooks (no thread per render); cancel.json is
  looked up at most twice a second.
- In a subprocess (`python -m tests.support.fake_lambda --s3 URL`, see
  tests/support/fake_lambda_process.py) its CPU stays out of the worker's figures;
  `GET /_fake/stats`, `GET /_fake/starts` and `POST /_fake/plan` reach it there.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import random
import string
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from typing import Any

import httpx

from tests.support.fake_lambda_still import FakeStills, render_still
from tests.support.fake_lambda_wire import (
    CANCEL_CHECK_SECONDS,
    FakeRender,
    Plan,
    S3Like,
    calculate_signature,
    error_entry,
    fatal_entry,
    handler_for,
    js_stringify,
    progress_payload,
    webhook_payload,
)
from tests.support.processes import free_port

__all__ = ["FakeRemotionLambda", "Plan", "calculate_signature", "js_stringify"]

REMOTION_VERSION = "4.0.527"
FUNCTION_NAME = "remotion-render-4-0-527-mem3008mb-disk10240mb-900sec"
BUCKET = "remotionlambda-useast1-testbucket"


class FakeRemotionLambda:
    """The fake function plus its HTTP server (`endpoint` for AWS_ENDPOINT_URL_LAMBDA)."""

    def __init__(self, s3: S3Like, *, port: int = 0) -> None:
        self.s3 = s3
        self.plan = Plan()
        self.renders: dict[str, FakeRender] = {}
        self.invocations: list[dict[str, Any]] = []
        self.stills = FakeStills()  # renderStillOnLambda (fake_lambda_still.py)
        self.throttled = 0
        self.max_running = 0
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._s3 = s3.client()  # boto3 clients are thread-safe: one for all requests
        self._s3.create_bucket(Bucket=BUCKET)
        self._ending: list[tuple[float, str]] = []
        self._ending_added = threading.Condition(self._lock)
        self._webhooks = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-webhook")
        self._http = httpx.Client(timeout=10)
        self._closed = False
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._ender = threading.Thread(target=self._end_renders, daemon=True)
        self._ender.start()

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
            now = time.monotonic()
            running = sum(1 for r in self.renders.values() if r.running(now))
            limit = self.plan.max_concurrent
            if self.plan.throttle_starts > 0 or (limit and running >= limit):
                self.plan.throttle_starts = max(0, self.plan.throttle_starts - 1)
                self.throttled += 1
                return (
                    429,
                    {"Type": "User", "message": "Rate Exceeded."},
                    "TooManyRequestsException",
                )
            render_id = "".join(random.choices(string.ascii_lowercase + string.digits, k=10))
            plan = dataclasses.replace(self.plan)
            render = FakeRender(render_id, payload.get("bucketName") or BUCKET, payload, plan)
            render.seconds = plan.duration()
            self.renders[render_id] = render
            self.max_running = max(self.max_running, running + 1)
        self._put(render, "progress.json", {"cancellationEnabled": True, "renderId": render_id})
        with self._lock:
            heapq.heappush(self._ending, (render.ends + plan.webhook_delay, render_id))
            self._ending_added.notify()
        time.sleep(plan.start_delay)  # a slow answer: the caller may time out meanwhile
        return 200, {"type": "success", "renderId": render_id, "bucketName": render.bucket}, ""

    def _status(self, render_id: str) -> dict[str, Any]:
        render = self.renders[render_id]
        elapsed = time.monotonic() - render.started
        share = min(elapsed / render.seconds, 1.0) if render.seconds > 0 else 1.0
        cancelled = self.cancelled(render_id, fresh=False)
        ended = share >= 1.0
        errors: list[dict[str, Any]] = []
        fatal = False
        done = False
        output = None
        size = None
        if cancelled:
            fatal = True
            errors.append(error_entry("Render was cancelled by cancelRender()"))
        elif ended and render.plan.outcome in ("fatal", "asset_error"):
            fatal = True
            share = 0.4
            errors.append(fatal_entry(render))
        elif ended and render.plan.outcome == "timeout":
            fatal = True
            share = 0.4
            errors.append(error_entry("The main function timed out after 900000ms."))
        elif ended:
            done = True
            output, size = self._output(render)
        return progress_payload(
            render,
            share=share,
            elapsed=elapsed,
            errors=errors,
            fatal=fatal,
            done=done,
            output=output,
            size=size,
        )

    def _output(self, render: FakeRender) -> tuple[str, int]:
        """The output object, written once (when the render ends, or at its first read)."""
        if render.output is None:
            body = b"\x00\x00\x00\x18ftypmp42" + bytes(2048)
            acl = "public-read" if render.params.get("privacy") == "public" else "private"
            self._s3.put_object(Bucket=render.bucket, Key=render.out_key, Body=body, ACL=acl)
            render.output = (f"{self.s3.endpoint}/{render.bucket}/{render.out_key}", len(body))
        return render.output

    def _end_renders(self) -> None:
        """The scheduler thread: at each render's end (plus its webhook delay), hand its
        webhook to the pool."""
        while True:
            with self._lock:
                while not self._closed and (
                    not self._ending or self._ending[0][0] > time.monotonic()
                ):
                    wait = self._ending[0][0] - time.monotonic() if self._ending else None
                    self._ending_added.wait(wait)
                if self._closed:
                    return
                _, render_id = heapq.heappop(self._ending)
                render = self.renders[render_id]
            self._webhooks.submit(self._finish, render)

    def _finish(self, render: FakeRender) -> None:
        webhook = render.params.get("webhook")
        if not webhook or not render.plan.webhook or self.cancelled(render.render_id):
            return
        output = self._output(render)[0] if render.plan.outcome == "success" else ""
        costs = self._status(render.render_id)["costs"]
        payload = webhook_payload(render, webhook.get("customData"), output, costs)
        for _ in range(max(1, render.plan.webhook_times)):
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
                response = self._http.post(url, content=body.encode(), headers=headers)
                render.webhook_responses.append(response.status_code)
                if response.is_success:
                    break
            except httpx.HTTPError:
                render.webhook_responses.append(0)
            time.sleep(0.2 * 2**attempt)
        render.webhook_sent.set()

    # -- helpers for tests ----------------------------------------------------------------

    def cancelled(self, render_id: str, *, fresh: bool = True) -> bool:
        """Whether cancel.json was written for the render (cancel_render_on_lambda);
        looked up again only after CANCEL_CHECK_SECONDS unless `fresh`."""
        render = self.renders[render_id]
        now = time.monotonic()
        if render.cancel_seen or (not fresh and now - render.cancel_checked < CANCEL_CHECK_SECONDS):
            return render.cancel_seen
        render.cancel_checked = now
        try:
            self._s3.head_object(Bucket=render.bucket, Key=f"renders/{render_id}/cancel.json")
            render.cancel_seen = True
        except Exception:
            pass
        return render.cancel_seen

    def starts(self) -> list[dict[str, Any]]:
        """The start payloads received."""
        with self._lock:
            return [p for p in self.invocations if p.get("type") == "start"]

    def starts_per_render(self) -> Counter[str]:
        """Accepted starts (Lambda renders begun) per our render id (the webhook's
        customData, or the metadata): a render started twice counts 2."""
        with self._lock:
            return Counter(
                str((r.params.get("metadata") or {}).get("renderId", ""))
                for r in self.renders.values()
            )

    def stats(self) -> dict[str, Any]:
        """Counts for tests and benchmarks in another process."""
        with self._lock:
            kinds = Counter(str(p.get("type")) for p in self.invocations)
        per_render = self.starts_per_render()
        return {
            "invocations": dict(kinds),
            "renders": len(self.renders),
            "throttled": self.throttled,
            "max_running": self.max_running,
            "started_twice": sorted(r for r, n in per_render.items() if n > 1),
            "webhooks_sent": sum(1 for r in self.renders.values() if r.webhook_sent.is_set()),
        }

    def set_plan(self, changes: dict[str, Any]) -> None:
        """Change the plan of the next renders."""
        with self._lock:
            self.plan = dataclasses.replace(self.plan, **changes)

    def _put(self, render: FakeRender, name: str, value: Any) -> None:
        self._s3.put_object(
            Bucket=render.bucket,
            Key=f"renders/{render.render_id}/{name}",
            Body=json.dumps(value).encode(),
        )

    def close(self) -> None:
        """Stop the server, the scheduler and the webhook pool."""
        with self._lock:
            self._closed = True
            self._ending_added.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._webhooks.shutdown(wait=True, cancel_futures=True)
        self._http.close()
        self._s3.close()
