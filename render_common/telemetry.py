"""OpenTelemetry: traces and metrics, exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

One trace runs from StartRender (gRPC server span) through the render:jobs entry (its
W3C `traceparent` field, see render_common.queue) into the worker's `render.attempt` span
and its engine calls. gRPC (server and client), Redis and SQLAlchemy are instrumented.
Without an endpoint nothing is exported and the libraries are not instrumented, so the
hot paths pay nothing for tracing.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

_lock = threading.Lock()
_instrumented = False


def instrument_libraries() -> None:
    """Instrument grpc.aio (server and client) and redis-py, once per process.

    SQLAlchemy engines are instrumented one by one as they are created (instrument_engine).
    """
    global _instrumented
    with _lock:
        if _instrumented:
            return
        _instrumented = True
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
    )
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    GrpcAioInstrumentorServer().instrument()  # type: ignore[no-untyped-call]
    GrpcAioInstrumentorClient().instrument()  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument()


def instrument_engine(engine: Any) -> None:
    """Trace an (async) SQLAlchemy engine's statements, when tracing is on."""
    if not _instrumented:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    # SQLAlchemyInstrumentor patches sqlalchemy.create_engine, which create_async_engine
    # imported before the patch, and it instruments once per process; so attach its
    # EngineTracer to each engine's sync core ourselves, as it would for `engine=`.
    connections = metrics.get_meter(
        "opentelemetry.instrumentation.sqlalchemy"
    ).create_up_down_counter("db.client.connections.usage", unit="connections")
    EngineTracer(  # type: ignore[no-untyped-call]
        trace.get_tracer("opentelemetry.instrumentation.sqlalchemy"),
        engine.sync_engine,
        connections,
    )


def configure_telemetry(
    service_name: str, *, exporter: SpanExporter | None = None
) -> TracerProvider:
    """Install the tracer (and meter) provider of `service_name` and instrument the libraries.

    `exporter` overrides OTLP (tests pass the SDK's in-memory exporter).
    """
    resource = Resource.create({"service.name": service_name})
    provider = TracerProvider(resource=resource)
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if exporter is not None:
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    if endpoint and exporter is None:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        reader = PeriodicExportingMetricReader(OTLPMetricExporter())
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
    if endpoint or exporter is not None:
        instrument_libraries()
    return provider
