"""Moved: SQL on renders lives in render_common/renders/ (`queries`). These names stay
importable from here for code that has not moved its imports yet (services/render_worker)."""

from render_common.renders.queries import (
    forget_entry,
    get,
    get_for_user,
    list_changed_for_user,
    list_for_user,
    mark_enqueued,
    mark_enqueued_many,
    queued_with_entry,
    queued_without_entry,
    running_silent,
)

__all__ = [
    "forget_entry",
    "get",
    "get_for_user",
    "list_changed_for_user",
    "list_for_user",
    "mark_enqueued",
    "mark_enqueued_many",
    "queued_with_entry",
    "queued_without_entry",
    "running_silent",
]
