"""The statements of the admit transition (render_common.renders.admit) and of the quota.

Built once: building Core statements per call costs more CPU than executing them, and
compiled forms are cached by the engine. The PostgreSQL ones take arrays, so one prepared
statement serves every batch size; the portable per-user forms serve SQLite and GetQuota.
PostgreSQL connections plan each execution for its parameters (render_common.db.engine),
and these statements are written so that a generic plan would not scan the table either.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    DateTime,
    Text,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    text,
)

from render_common.db.engine import json_text
from render_common.db.schema import video_renders
from render_common.renders.states import ACTIVE

_TEXT_ARRAY = ARRAY(Text)
_ACTIVE = ", ".join(f"'{state}'" for state in sorted(ACTIVE))

LOCK_USERS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended(u, 7)) FROM unnest(:users) AS u"
).bindparams(bindparam("users", type_=_TEXT_ARRAY))
# Per user, each count bound to `user_id = u.user_id`: whatever the plan, it walks the
# user's own index entries (a plan on status alone scans every queued render, which is
# what grows under a backlog).
USAGE_MANY = text(
    "SELECT u.user_id,"
    " (SELECT count(*) FROM video_renders v"
    "   WHERE v.user_id = u.user_id AND v.created_at >= :day_start),"
    " (SELECT count(*) FROM video_renders v"
    f"   WHERE v.user_id = u.user_id AND v.status IN ({_ACTIVE}))"
    " FROM unnest(:users) AS u(user_id)"
).bindparams(
    bindparam("users", type_=_TEXT_ARRAY), bindparam("day_start", type_=DateTime(timezone=True))
)
# `= ANY(array)` rather than a join with unnest(): a generic plan of the join hashes a
# scan of the whole table, ANY keeps the index scan under any plan. The pairs come back
# as a superset, matched in Python.
# Columns named, not `*`: `.columns()` maps the result by position.
EXISTING_MANY = (
    text(
        f"SELECT {', '.join(c.name for c in video_renders.columns)} FROM video_renders"
        " WHERE user_id = ANY(:users) AND request_id = ANY(:request_ids)"
    )
    .bindparams(bindparam("users", type_=_TEXT_ARRAY), bindparam("request_ids", type_=_TEXT_ARRAY))
    .columns(*video_renders.columns)
)

# Portable forms, per user (SQLite, and GetQuota).
_DAILY_USED = (
    select(func.count())
    .select_from(video_renders)
    .where(
        video_renders.c.user_id == bindparam("user_id"),
        video_renders.c.created_at >= bindparam("day_start"),
    )
    .scalar_subquery()
)
_CONCURRENT_ACTIVE = (
    select(func.count())
    .select_from(video_renders)
    .where(
        video_renders.c.user_id == bindparam("user_id"),
        # Constants inline: no expanding parameter to process on every execution.
        video_renders.c.status.in_([literal_column(f"'{state}'") for state in sorted(ACTIVE)]),
    )
    .scalar_subquery()
)
USAGE = select(_DAILY_USED, _CONCURRENT_ACTIVE)
EXISTING = select(video_renders).where(
    video_renders.c.user_id == bindparam("user_id"),
    video_renders.c.request_id == bindparam("request_id"),
)
INSERT = insert(video_renders)


# PostgreSQL: the batch's rows as one array per column, inserted through unnest(): one
# bind per column whatever the batch size, encoded by asyncpg in C (an executemany binds
# and processes every row in Python). JSON columns travel as text and are cast. One
# statement per set of columns (every new row has the same), built once.
@functools.cache
def insert_many(columns: tuple[str, ...]) -> Any:
    """INSERT ... SELECT * FROM unnest(one array per column)."""
    arrays = []
    binds = []
    for name in columns:
        column_type = video_renders.c[name].type
        if isinstance(column_type, JSON):
            arrays.append(f"CAST(:{name} AS JSON[])")
            binds.append(bindparam(name, type_=_TEXT_ARRAY))
        else:
            arrays.append(f":{name}")
            binds.append(bindparam(name, type_=ARRAY(column_type)))
    return text(
        f"INSERT INTO video_renders ({', '.join(columns)})"
        f" SELECT * FROM unnest({', '.join(arrays)})"
    ).bindparams(*binds)


def as_columns(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows as one list per column (JSON columns serialized)."""
    arrays: dict[str, list[Any]] = {}
    for name in columns:
        values = [row[name] for row in rows]
        if isinstance(video_renders.c[name].type, JSON):
            values = [None if v is None else json_text(v) for v in values]
        arrays[name] = values
    return arrays
