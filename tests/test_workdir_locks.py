"""Work directory lock files (services/render_worker/workdirs.py) against real worker
processes: a worker stopped before it made its work directory (an idle one) must not leak
its `<name>.lock`; the next worker to start removes the locks no live process holds and
keeps the live workers' ones.

Workers are tests/support/scripted_worker processes (the deployed worker with a scripted
engine); Redis and PostgreSQL are the test's own (tests/support/fault_rig).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from render_common.config import Settings
from tests.support.fault_rig import FaultRig, start_rig, stop_process


@pytest_asyncio.fixture
async def rig(base_settings: Settings, tmp_path: Path, user: str) -> AsyncIterator[FaultRig]:
    started = await start_rig(base_settings, tmp_path, user)
    try:
        yield started
    finally:
        await started.close()


def _names(work: Path) -> list[str]:
    return sorted(p.name for p in work.iterdir())


async def test_killed_idle_worker_lock_is_removed_at_next_start(rig: FaultRig) -> None:
    work = rig.data_dir / "work"
    victim = rig.spawn_worker("victim")
    await rig.started(victim)
    assert _names(work) == ["victim.lock"]  # idle: no directory of its own yet
    stop_process(victim, signal.SIGKILL)
    assert _names(work) == ["victim.lock"]  # what a kill leaves: the lock, held by no one
    bystander = rig.spawn_worker("bystander")
    await rig.started(bystander)
    assert _names(work) == ["bystander.lock"]  # the dead worker's lock is swept
    rescuer = rig.spawn_worker("rescuer")
    await rig.started(rescuer)
    assert _names(work) == ["bystander.lock", "rescuer.lock"]  # a live worker's lock stays
    stop_process(bystander, signal.SIGTERM)
    stop_process(rescuer, signal.SIGTERM)
    assert bystander.returncode == 0 and rescuer.returncode == 0
    assert _names(work) == []  # a stopped worker removes its own lock


async def test_lock_held_by_another_process_is_kept(rig: FaultRig) -> None:
    """A lock file flocked by some live process (a worker still starting, say) is not
    removed, and is removed once that process is gone."""
    work = rig.data_dir / "work"
    work.mkdir(parents=True)
    holder_code = textwrap.dedent(
        f"""
        import fcntl, sys
        handle = open({str(work / "holder.lock")!r}, "a+b")
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        print("locked", flush=True)
        sys.stdin.read()
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", holder_code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
            first = rig.spawn_worker("first")
            await rig.started(first)
            assert _names(work) == ["first.lock", "holder.lock"]
        finally:
            holder.kill()
    stop_process(first, signal.SIGKILL)
    second = rig.spawn_worker("second")
    await rig.started(second)
    assert _names(work) == ["second.lock"]
