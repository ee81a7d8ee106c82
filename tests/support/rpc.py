"""Reading google.rpc error details back from a failed call, as a client would."""

from __future__ import annotations

import grpc

from render_common.status_details import ErrorDetails, error_details

RichError = ErrorDetails


def rich_error(error: grpc.aio.AioRpcError) -> ErrorDetails:
    """Decode the details of a failed call."""
    return error_details(error)
