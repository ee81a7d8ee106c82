"""The Render record's copy-with-changes (StartRender sets the entry id through it)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from render_common.renders.record import Render


def a_render() -> Render:
    now = datetime.now(UTC)
    return Render.from_row(
        {
            "id": "r-1",
            "user_id": "u-1",
            "status": "queued",
            "stage": "queued",
            "format": "mp4",
            "quality": "low",
            "engine": "ssr",
            "spec": {"scenes": [{"type": "title"}]},
            "created_at": now,
            "updated_at": now,
        }
    )


def test_with_values_is_dataclasses_replace() -> None:
    render = a_render()
    changed = render.with_values(queue_job_id="1-0", progress=0.5)
    assert changed == dataclasses.replace(render, queue_job_id="1-0", progress=0.5)
    assert (changed.queue_job_id, changed.progress) == ("1-0", 0.5)
    assert (render.queue_job_id, render.progress) == (None, 0.0)  # the original unchanged
    assert changed.spec is render.spec  # values shared, as replace shares them


def test_with_values_refuses_unknown_fields() -> None:
    with pytest.raises(TypeError, match="no_such_column"):
        a_render().with_values(no_such_column=1)
