"""The Lambda functions every worker together keeps busy, within LAMBDA_CONCURRENCY_LIMIT.

The limit is the account's (or the function's reserved) concurrency, so it is shared by
all workers: each Lambda render holds a lease in Redis on its functions (its renderers
and the orchestrator) from before renderMediaOnLambda until it ends. A lease expires
LEASE_SECONDS after its last renewal; the worker renews those it holds every
RENEW_SECONDS, so a killed worker's functions come back to the pool by themselves (the
worker that takes its renders over takes their leases again). One Lua script admits a
start atomically: expired leases are dropped, then the render's functions are added if
they fit (a render needing more than the whole limit runs alone rather than never).

Within a worker, starts wait in arrival order and only the first polls Redis (woken at
once by a release of this worker, else every POLL_SECONDS), so a queue of waiting starts
costs one call per poll, not one each.

When Redis does not answer, a worker counts its own leases against the limit (as one
worker alone would) instead of stopping every Lambda render; the renewal puts its leases
back into Redis once it answers.

Keys (render_common/streams.py): `render:lambda:budget:{leases}` (sorted set: render id by
expiry), `...:{functions}` (hash: render id -> functions), `...:{used}` (their sum).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from render_common import streams
from render_common.tasks import every

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0
RENEW_SECONDS = 20.0
POLL_SECONDS = 0.5

# KEYS: leases, functions, used. ARGV: now ms, render id, functions, limit, lease ms,
# force ("1": count it whatever the budget says: a render already running).
ADMIT = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, member in ipairs(expired) do
  local held = tonumber(redis.call('HGET', KEYS[2], member) or '0')
  redis.call('HDEL', KEYS[2], member)
  redis.call('DECRBY', KEYS[3], held)
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1]) end
local expiry = tonumber(ARGV[1]) + tonumber(ARGV[5])
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], expiry, ARGV[2])
  return 1
end
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
local wanted = tonumber(ARGV[3])
if ARGV[6] == '1' or used <= 0 or used + wanted <= tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], expiry, ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[2], wanted)
  redis.call('INCRBY', KEYS[3], wanted)
  return 1
end
return 0
"""

# KEYS: leases, functions, used. ARGV: render id.
RELEASE = """
local held = redis.call('HGET', KEYS[2], ARGV[1])
if held then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DECRBY', KEYS[3], tonumber(held))
end
return 1
"""

KEYS = (streams.LAMBDA_BUDGET_LEASES, streams.LAMBDA_BUDGET_FUNCTIONS, streams.LAMBDA_BUDGET_USED)


class SharedFunctionBudget:
    """This worker's side of the shared budget: its leases, its queue of starts."""

    def __init__(self, redis: Redis, limit: int) -> None:
        self.limit = limit
        self._redis = redis
        self._admit = redis.register_script(ADMIT)
        self._release = redis.register_script(RELEASE)
        self.held: dict[str, int] = {}  # render id -> functions, leased by this worker
        self._turn = asyncio.Lock()  # starts of this worker, in arrival order
        self._released = asyncio.Event()
        self._renewal: asyncio.Task[None] | None = None

    async def _lease(self, render_id: str, functions: int, *, force: bool) -> bool:
        now_ms = int(time.time() * 1000)
        args: list[str | int] = [
            now_ms,
            render_id,
            functions,
            self.limit,
            int(LEASE_SECONDS * 1000),
        ]
        return bool(await self._admit(keys=list(KEYS), args=[*args, "1" if force else "0"]))

    async def _try(self, render_id: str, functions: int, *, force: bool) -> bool:
        try:
            admitted = await self._lease(render_id, functions, force=force)
        except (RedisError, OSError) as exc:
            admitted = self._admit_alone(render_id, functions, force=force, error=exc)
        if admitted:
            self.held[render_id] = functions
            self._renewing()
        return admitted

    def _admit_alone(
        self, render_id: str, functions: int, *, force: bool, error: BaseException
    ) -> bool:
        """Redis is away: admit within the limit counting this worker's leases alone (the
        guarantee of a single worker), rather than stop every Lambda render. The renewal
        re-leases what this worker holds in Redis once it answers again."""
        used = sum(self.held.values())
        admitted = force or used <= 0 or used + functions <= self.limit
        log.warning(
            "lambda budget unreachable; counting this worker's renders alone",
            extra={"render_id": render_id, "admitted": admitted, "error": str(error)},
        )
        return admitted

    async def acquire(self, render_id: str, functions: int) -> None:
        """Wait until the render's functions fit in the shared budget, then lease them."""
        async with self._turn:
            while not await self._try(render_id, functions, force=False):
                self._released.clear()
                pause = POLL_SECONDS * random.uniform(0.8, 1.2)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), pause)

    async def take(self, render_id: str, functions: int) -> None:
        """Lease the functions of a render already running (followed after a takeover)."""
        await self._try(render_id, functions, force=True)

    async def release(self, render_id: str) -> None:
        """Give the render's functions back (best effort: a lease left expires)."""
        if self.held.pop(render_id, None) is None:
            return
        self._released.set()
        try:
            await self._release(keys=list(KEYS), args=[render_id])
        except (RedisError, OSError) as exc:
            log.warning(
                "lambda budget release failed; the lease will expire",
                extra={"render_id": render_id, "error": str(exc)},
            )

    def forget(self, render_id: str) -> None:
        """Stop renewing a lease without giving it back (its render still runs)."""
        self.held.pop(render_id, None)

    def _renewing(self) -> None:
        if self._renewal is None or self._renewal.done():
            self._renewal = asyncio.create_task(
                every(RENEW_SECONDS, self._renew, "lambda budget renewal"),
                name="lambda-budget-renewal",
            )

    async def _renew(self) -> None:
        """Extend the leases of this worker's renders (re-adding any Redis lost)."""
        for render_id, functions in list(self.held.items()):
            await self._lease(render_id, functions, force=True)
            if render_id not in self.held:  # released meanwhile: do not leave it leased
                await self._release(keys=list(KEYS), args=[render_id])

    async def close(self) -> None:
        """Stop renewing (the leases expire unless another worker takes them); close the
        Redis client."""
        if self._renewal is not None:
            self._renewal.cancel()
            await asyncio.gather(self._renewal, return_exceptions=True)
        await self._redis.aclose()
