"""The engine contract (tests/engine_contract.py) run against both engines.

SSR renders for real with Remotion and Chromium; Lambda talks to the local server that
speaks the Lambda Invoke API like a Remotion function (tests/support/fake_lambda.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from render_common.config import Settings
from services.render_worker.app import build_engines
from services.render_worker.engines.base import Engine, RenderJob, RenderOutput
from services.render_worker.engines.ssr import SsrEngine
from tests.engine_contract import EngineContract, Reports, make_job
from tests.support.fake_lambda import FakeRemotionLambda
from tests.support.lambda_env import lambda_settings
from tests.support.processes import free_port


@pytest.mark.slow
class TestSsrEngine(EngineContract):
    """SSR: Remotion and Chromium on this machine."""

    @pytest_asyncio.fixture
    async def engine(self, base_settings: Settings, tmp_path: Path) -> AsyncIterator[Engine]:
        engines = build_engines(base_settings, tmp_path / "data")
        assert set(engines) == {"ssr"}
        yield engines["ssr"]
        for engine in engines.values():
            await engine.close()

    async def assert_stopped(self, engine: Engine, job: RenderJob) -> None:
        # The host dropped the job and renders the next one at once.
        assert isinstance(engine, SsrEngine)
        output = await engine.render(make_job(job.work_dir.parent / "after"), Reports())
        assert output.output_path is not None and output.output_path.exists()


class TestLambdaEngine(EngineContract):
    """Lambda: the remotion-lambda client against a local Remotion-like function."""

    @pytest_asyncio.fixture
    async def engine(
        self, base_settings: Settings, fake_lambda: FakeRemotionLambda, tmp_path: Path
    ) -> AsyncIterator[Engine]:
        settings = lambda_settings(base_settings, webhook=False)
        engines = build_engines(settings, tmp_path / "data")
        yield engines["lambda"]
        for engine in engines.values():
            await engine.close()

    def output_bytes(self, output: RenderOutput) -> int:
        response = httpx.get(output.output_url)
        response.raise_for_status()
        assert len(response.content) == output.probe["sizeBytes"]
        return len(response.content)

    async def assert_stopped(self, engine: Engine, job: RenderJob) -> None:
        fake = self._fake
        (render_id,) = fake.renders
        assert fake.cancelled(render_id), "cancel_render_on_lambda did not reach the function"

    @pytest.fixture(autouse=True)
    def _remember_fake(self, fake_lambda: FakeRemotionLambda) -> None:
        self._fake = fake_lambda

    async def test_private_asset_never_reaches_lambda(self, engine: Engine, tmp_path: Path) -> None:
        await self.test_refuses_private_asset_without_retry(engine, tmp_path)
        assert self._fake.starts() == []

    async def test_follows_by_polling_alone_when_redis_is_away(
        self, base_settings: Settings, fake_lambda: FakeRemotionLambda, tmp_path: Path
    ) -> None:
        """No webhook wait without Redis: polling carries on at its interval, not in a spin."""
        settings = lambda_settings(base_settings, webhook=False).with_overrides(
            redis_url=f"redis://127.0.0.1:{free_port()}/0"
        )
        engine = build_engines(settings, tmp_path / "data")["lambda"]
        try:
            output = await engine.render(make_job(tmp_path / "work"), Reports())
        finally:
            await engine.close()
        assert output.output_url
        (render_id,) = fake_lambda.renders
        polls = sum(
            1
            for p in fake_lambda.invocations
            if p.get("type") == "status" and p.get("renderId") == render_id
        )
        # 1.5 s of render, one poll per >= 0.2 s: at most 9 (without the pause it was 13).
        assert 2 <= polls <= 9, polls
