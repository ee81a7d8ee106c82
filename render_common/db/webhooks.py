"""Moved: SQL on renders lives in render_common/renders/ (`webhooks`). These names stay
importable from here for code that has not moved its imports yet."""

from render_common.renders.webhooks import (
    Claim,
    Outcome,
    SigningSecret,
    claim_due,
    record_outcome,
    rotate_secret,
    signing_secret,
)

__all__ = [
    "Claim",
    "Outcome",
    "SigningSecret",
    "claim_due",
    "record_outcome",
    "rotate_secret",
    "signing_secret",
]
