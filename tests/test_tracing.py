"""One trace from StartRender through the render:jobs entry into the worker and its engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from render.v1 import render_pb2

from render_common.config import Settings
from render_common.telemetry import configure_telemetry
from tests.support.scenes import sample_scenes
from tests.support.stack import start_stack

pytestmark = pytest.mark.slow


async def test_single_trace_across_services(
    base_settings: Settings, postgres_url: str, tmp_path: Path, user: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = configure_telemetry("render-export-test", exporter=exporter)
    settings = base_settings.with_overrides(
        database_url=postgres_url, data_dir=str(tmp_path / "data")
    )
    stack = await start_stack(settings, user)
    try:
        project, scenes = sample_scenes("tiny")
        render = await stack.start(scenes, project=project)
        done = await stack.wait(render.render_id)
        assert done.state == render_pb2.Render.STATE_SUCCEEDED
    finally:
        await stack.close()
    provider.force_flush()
    spans = exporter.get_finished_spans()
    by_id = {span.context.span_id: span for span in spans}
    start = next(
        s
        for s in spans
        if s.name == "/render.v1.RenderService/StartRender" and s.kind.name == "SERVER"
    )
    attempt = next(
        s
        for s in spans
        if s.name == "render.attempt" and (s.attributes or {}).get("render.id") == render.render_id
    )
    assert attempt.context.trace_id == start.context.trace_id
    # The worker's span descends from the StartRender server span through the stream entry.
    ancestor = attempt
    while ancestor.parent is not None and ancestor.parent.span_id in by_id:
        ancestor = by_id[ancestor.parent.span_id]
    assert ancestor.context.span_id in {
        start.context.span_id,
        start.parent.span_id if start.parent else 0,
    }
    trace_spans = [s for s in spans if s.context.trace_id == start.context.trace_id]
    names = {s.name for s in trace_spans}
    assert "engine.ssr.render" in names
    assert any(s.name == "XADD" for s in trace_spans), names  # Redis instrumented
    assert any(s.name.startswith(("INSERT", "UPDATE", "SELECT")) for s in trace_spans), (
        names
    )  # SQLAlchemy
