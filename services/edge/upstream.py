"""The edge's gRPC channels to render_api and progress (one each, shared by every request)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from render.v1 import progress_service_pb2_grpc, render_service_pb2_grpc

from render_common.config import Settings

# Many long-lived streams share one HTTP/2 connection to progress; keepalive finds a
# dead peer.
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 16 << 20),
]


@dataclass
class Upstream:
    """Stubs of the two services the edge fronts."""

    render_channel: grpc.aio.Channel
    progress_channel: grpc.aio.Channel

    def __post_init__(self) -> None:
        self.renders = render_service_pb2_grpc.RenderServiceStub(self.render_channel)
        self.progress = progress_service_pb2_grpc.ProgressServiceStub(self.progress_channel)

    @classmethod
    def connect(cls, settings: Settings) -> Upstream:
        """Channels to RENDER_API_ADDR and PROGRESS_ADDR (connected lazily)."""
        return cls(
            render_channel=grpc.aio.insecure_channel(
                settings.effective_render_api_addr, options=CHANNEL_OPTIONS
            ),
            progress_channel=grpc.aio.insecure_channel(
                settings.effective_progress_addr, options=CHANNEL_OPTIONS
            ),
        )

    async def close(self) -> None:
        """Close both channels (open calls end CANCELLED)."""
        await self.render_channel.close()
        await self.progress_channel.close()
