"""Request decoding that never raises: undecodable bytes become a typed marker.

grpc.aio decodes a request with the handler's `request_deserializer` before any of our
code runs, and an exception there escapes every interceptor: the client gets UNKNOWN
with a Python class name and the server logs an ERROR traceback. So the interceptor
registers every RPC with `tolerant(deserializer)`: bytes that are not the request message
(garbage, truncated, nested past the decoder's depth limit, a string field that is not
UTF-8, as protobufjs writes a lone UTF-16 surrogate) decode to an `Undecodable`, which the
interceptor turns into INVALID_ARGUMENT / MALFORMED_REQUEST in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

Deserializer = Callable[[bytes], Any]

# What went wrong, as ErrorInfo metadata `problem` and in the message (in these words).
TOO_DEEP = "TOO_DEEP"
INVALID_UTF8 = "INVALID_UTF8"
UNDECODABLE = "UNDECODABLE"

EXPLANATIONS = {
    TOO_DEEP: "its messages are nested more deeply than the decoder allows "
    "(each level of a google.protobuf.Struct value counts three)",
    INVALID_UTF8: "a string field is not valid UTF-8 (for example a lone UTF-16 surrogate)",
    UNDECODABLE: "the bytes are not a protobuf encoding of it (garbage or truncated)",
}

# Errors a generated FromString raises for bad bytes, across protobuf's implementations
# (upb raises DecodeError for all of them; the pure-Python one may raise the others).
DECODE_ERRORS = (DecodeError, RecursionError, UnicodeDecodeError)


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A request whose bytes could not be decoded as `message_type`."""

    message_type: str
    problem: str
    size: int
    error: str

    @property
    def explanation(self) -> str:
        """What is wrong with the bytes, for the caller."""
        return EXPLANATIONS[self.problem]


def classify(error: BaseException) -> str:
    """TOO_DEEP, INVALID_UTF8 or UNDECODABLE for a decoder's exception."""
    if isinstance(error, RecursionError):
        return TOO_DEEP
    if isinstance(error, UnicodeDecodeError):
        return INVALID_UTF8
    text = str(error).lower()
    if "depth" in text or "recursion" in text:
        return TOO_DEEP
    if "utf-8" in text or "utf8" in text:
        return INVALID_UTF8
    return UNDECODABLE


def message_type_of(deserializer: Deserializer) -> str:
    """The full protobuf name a generated `FromString` decodes ("" when unknown)."""
    owner = getattr(deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", ""))


def tolerant(deserializer: Deserializer | None) -> Deserializer | None:
    """`deserializer`, returning an `Undecodable` instead of raising on bad bytes."""
    if deserializer is None:
        return None
    message_type = message_type_of(deserializer)
    decode = deserializer

    def deserialize(data: bytes) -> Any:
        try:
            return decode(data)
        except DECODE_ERRORS as exc:
            return Undecodable(
                message_type=message_type,
                problem=classify(exc),
                size=len(data),
                error=str(exc)[:200],
            )

    return deserialize
