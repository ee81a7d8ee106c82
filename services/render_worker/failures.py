"""Why a render attempt failed, and whether another attempt could succeed.

RenderFailure(reason, message, retryable)   raised by engines, assets and storage;
                                            the consumer decides retry vs fail from
                                            `retryable` alone.
RenderCancelled                             the owner cancelled it (not a failure).
"""

from __future__ import annotations


class RenderFailure(Exception):
    """A failed attempt: UPPER_SNAKE reason, message for people, retryable or not."""

    def __init__(self, reason: str, message: str, *, retryable: bool, stack: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable
        self.stack = stack


class RenderCancelled(Exception):
    """The render was cancelled while running."""
