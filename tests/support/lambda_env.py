"""Pointing boto3 and the worker's settings at the local Remotion-like Lambda function."""

from __future__ import annotations

from typing import Any

import pytest

from render_common.config import Settings
from tests.support.fake_lambda import BUCKET, FUNCTION_NAME, FakeRemotionLambda
from tests.support.processes import free_port

WEBHOOK_SECRET = "test-webhook-secret-0123456789abcdef"
SERVE_URL = f"https://{BUCKET}.s3.us-east-1.amazonaws.com/sites/render-export/index.html"


def use_fake_lambda(monkeypatch: pytest.MonkeyPatch, fake: FakeRemotionLambda) -> None:
    """Send boto3's Lambda and S3 calls of this process to the fake and its S3 server."""
    point_aws_at(monkeypatch, fake.endpoint, fake.s3.endpoint)


def point_aws_at(monkeypatch: pytest.MonkeyPatch, lambda_endpoint: str, s3_endpoint: str) -> None:
    """Send boto3's Lambda and S3 calls of this process to these endpoints (test keys)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", lambda_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def lambda_settings(base: Settings, *, webhook: bool = True, **overrides: Any) -> Settings:
    """Settings with the Lambda engine configured (and the webhook on a free port)."""
    values: dict[str, Any] = {
        "lambda_function_name": FUNCTION_NAME,
        "lambda_serve_url": SERVE_URL,
        "lambda_bucket": BUCKET,
        "lambda_poll_interval_seconds": 0.2,
    }
    if webhook:
        port = free_port()
        values.update(
            webhook_port=port,
            webhook_url=f"http://127.0.0.1:{port}/webhooks/remotion",
            webhook_secret=WEBHOOK_SECRET,
        )
    values.update(overrides)
    return base.with_overrides(**values)
