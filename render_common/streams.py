"""Every Redis key and stream name, with what it holds and how long it lives.

render:jobs:ssr             stream, consumer group `render-workers-ssr`: one entry per
                            attempt {render_id, attempt, traceparent} of an SSR render,
                            read only into SSR slots (WORKER_CONCURRENCY); XACKed and
                            XDELed when the attempt ends; capped (approximate MAXLEN).
                            Its undelivered entries are SSR's backlog (KEDA, AUTO).
render:jobs:lambda          the same for Lambda renders, group `render-workers-lambda`,
                            read by the worker's Lambda follower (LAMBDA_MAX_IN_FLIGHT).
render:jobs                 the legacy single stream (group `render-workers`), written
                            before the split (and by old replicas during a rollout):
                            workers drain it, moving each entry into its engine's queue.
render:retry                sorted set of entries waiting out their backoff, scored by
                            due time (epoch seconds); members carry the engine, and the
                            worker moves due ones into that engine's queue (members
                            without one into render:jobs, whose drain routes them).
render:dead                 stream of attempts that failed for good, with the reason;
                            capped.
render:events:{render_id}   stream of one render's progress events; capped at
                            EVENTS_MAXLEN, expires EVENTS_TTL_SECONDS after its
                            terminal event.
render:user-events:{user_id}
                            stream of the events of all of one user's renders, for
                            dashboards (progress WatchRenders): each entry is a copy of a
                            render:events entry, under the same entry id, plus
                            {render_id, event_id} (event_id: that same id, what clients
                            resume from). Written by `publish_event` in the same script
                            as the render's entry (atomic, same order). Entries of both
                            streams carry `prev`, the id written before them in their
                            stream (for the progress service's gap rule);
                            capped at USER_EVENTS_MAXLEN, expires EVENTS_TTL_SECONDS
                            after the user's latest event.
render:cancel               pub/sub channel carrying render ids to cancel now.
render:ended                pub/sub channel carrying the id of each render whose terminal
                            event was just published (by `publish_event`, after the row
                            was written): wakes render_api's webhook delivery at once
                            (its database poll stays the durable fallback).
render:cancel:{render_id}   string flag (TTL 1 day) so a worker that missed the
                            message still sees the cancel before it starts.
render:lock:sweeper         lock (TTL) so one sweeper at a time re-enqueues.
render:webhook:seen:{lambda_render_id}
                            replay guard for Lambda webhooks: set (NX) by the first
                            verified webhook of a Lambda render; a second one is a
                            replay and is refused (TTL 7 days).
render:lambda:webhook:{lambda_render_id}
                            list holding the verified webhook payload of a Lambda render,
                            read without removal (BLMOVE onto itself) by the engine that
                            follows the render (TTL 7 days).
render:lambda:webhooks      pub/sub channel carrying the Lambda render id of each webhook
                            parked, so the worker following that render reads it at once
                            (its poller also checks parked payloads: a missed message
                            only delays the completion).
render:lambda:budget:{budget}:leases / :functions / :used
                            the Lambda functions all workers keep busy, within
                            LAMBDA_CONCURRENCY_LIMIT: each running Lambda render's lease
                            (sorted set by expiry), its functions (hash) and their sum
                            (services/render_worker/engines/lambda_budget.py).
"""

from __future__ import annotations

from dataclasses import dataclass

SSR_JOBS_STREAM = "render:jobs:ssr"
SSR_JOBS_GROUP = "render-workers-ssr"
LAMBDA_JOBS_STREAM = "render:jobs:lambda"
LAMBDA_JOBS_GROUP = "render-workers-lambda"
LEGACY_JOBS_STREAM = "render:jobs"
LEGACY_JOBS_GROUP = "render-workers"
JOBS_MAXLEN = 100_000
RETRY_ZSET = "render:retry"
DEAD_STREAM = "render:dead"
DEAD_MAXLEN = 10_000
EVENTS_PREFIX = "render:events:"
USER_EVENTS_PREFIX = "render:user-events:"
USER_EVENTS_MAXLEN = 1000
CANCEL_CHANNEL = "render:cancel"
RENDER_ENDED_CHANNEL = "render:ended"
CANCEL_FLAG_PREFIX = "render:cancel:"
CANCEL_FLAG_TTL_SECONDS = 24 * 3600
SWEEPER_LOCK = "render:lock:sweeper"
WEBHOOK_SEEN_PREFIX = "render:webhook:seen:"
WEBHOOK_SEEN_TTL_SECONDS = 7 * 24 * 3600
LAMBDA_WEBHOOK_PREFIX = "render:lambda:webhook:"
LAMBDA_WEBHOOK_CHANNEL = "render:lambda:webhooks"
# The shared Lambda function budget (services/render_worker/engines/lambda_budget.py); one
# hash tag, so that its script's keys sit in one cluster slot.
LAMBDA_BUDGET_LEASES = "render:lambda:budget:{budget}:leases"
LAMBDA_BUDGET_FUNCTIONS = "render:lambda:budget:{budget}:functions"
LAMBDA_BUDGET_USED = "render:lambda:budget:{budget}:used"


@dataclass(frozen=True, slots=True)
class JobQueue:
    """One engine's work queue: its stream and the consumer group of the workers."""

    stream: str
    group: str


SSR_QUEUE = JobQueue(SSR_JOBS_STREAM, SSR_JOBS_GROUP)
LAMBDA_QUEUE = JobQueue(LAMBDA_JOBS_STREAM, LAMBDA_JOBS_GROUP)
LEGACY_QUEUE = JobQueue(LEGACY_JOBS_STREAM, LEGACY_JOBS_GROUP)
JOB_QUEUES = (SSR_QUEUE, LAMBDA_QUEUE, LEGACY_QUEUE)  # every stream an entry may be in


def job_queue(engine: str) -> JobQueue:
    """The queue carrying `engine`'s attempts ("lambda", else SSR)."""
    return LAMBDA_QUEUE if engine == "lambda" else SSR_QUEUE


def events_stream(render_id: str) -> str:
    """The stream holding one render's progress events."""
    return f"{EVENTS_PREFIX}{render_id}"


def render_id_of_events_stream(key: str) -> str:
    """The render id of an events stream key."""
    return key[len(EVENTS_PREFIX) :]


def user_events_stream(user_id: str) -> str:
    """The stream carrying the events of all of one user's renders."""
    return f"{USER_EVENTS_PREFIX}{user_id}"


def cancel_flag(render_id: str) -> str:
    """The key flagging a render as cancelled."""
    return f"{CANCEL_FLAG_PREFIX}{render_id}"


def webhook_seen(lambda_render_id: str) -> str:
    """The key remembering that a Lambda render's webhook was already accepted."""
    return f"{WEBHOOK_SEEN_PREFIX}{lambda_render_id}"


def lambda_webhook(lambda_render_id: str) -> str:
    """The list holding a Lambda render's verified webhook payload."""
    return f"{LAMBDA_WEBHOOK_PREFIX}{lambda_render_id}"
