"""The service metrics, defined once (names follow OpenTelemetry's semantic style)."""

from __future__ import annotations

from opentelemetry import metrics

meter = metrics.get_meter("render_export")

render_duration = meter.create_histogram(
    "render.duration",
    unit="s",
    description="Wall time of a render attempt, by engine, quality and outcome",
)
render_failures = meter.create_counter(
    "render.failures", description="Failed render attempts, by reason and retryable"
)
active_renders = meter.create_up_down_counter(
    "render.active", description="Renders running on this worker"
)
progress_watchers = meter.create_up_down_counter(
    "progress.watchers", description="Open WatchRender/WatchRenders streams"
)
queue_depth = meter.create_histogram(
    "render.queue.depth", description="Entries waiting in the SSR queue, seen by AUTO at intake"
)
queue_lag = meter.create_histogram(
    "render.queue.lag", unit="s", description="Time from enqueue to a worker starting the attempt"
)
