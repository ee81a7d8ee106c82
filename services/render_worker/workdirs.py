"""Work directories of render attempts: one private directory per attempt, under a directory
per worker, swept when the worker starts and after each attempt.

Layout under the work root (`RENDER_DATA_DIR/work`, which several workers may share):

    <tag>.lock              held (flock, exclusive) by the live worker named <tag>
    <tag>/render-<id>-*/    that worker's attempts (frames, output, thumbnail)

A worker killed mid-attempt leaves its directories behind, but its lock dies with it (the
lock file stays, also when it is killed before making its directory). A worker starting
sweeps every tag, directory or lone lock file, whose lock it can take (including its own
name's, left by its previous run), and the legacy `render-*` directories of older
versions once they are older than the render timeout. After each attempt it removes the
attempt's directory and anything else in its own tag that no running attempt uses. Locks
are per machine: workers on different machines must not share one work root (flock over a
network filesystem is not relied on).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)
LEGACY_PREFIX = "render-"


class WorkDirs:
    """The attempts' directories of one worker, and the sweep of dead workers' ones."""

    def __init__(self, root: Path, tag: str, *, legacy_max_age_seconds: float) -> None:
        self.root = root
        self._legacy_max_age = legacy_max_age_seconds
        self._active: set[Path] = set()
        root.mkdir(parents=True, exist_ok=True)
        self._lock: IO[bytes] | None = None
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in tag) or "worker"
        for candidate in (safe, f"{safe}-{uuid.uuid4().hex[:8]}"):
            self._lock = _try_lock(root / f"{candidate}.lock")
            if self._lock is not None:
                self.tag = candidate
                break
        else:  # pragma: no cover - a random suffix cannot be locked by anyone else
            raise RuntimeError(f"cannot lock a work directory under {root}")
        self.own = root / self.tag

    def sweep_stale(self) -> int:
        """Remove directories and lock files no live worker holds (this one's earlier runs
        included): a worker stopped before it made its directory leaves only its lock."""
        removed = 0
        now = time.time()
        tags: set[str] = set()
        for entry in sorted(self.root.iterdir()):
            if entry == self.own:
                removed += self._sweep_own()
            elif entry.name.startswith(LEGACY_PREFIX) and not entry.name.endswith(".lock"):
                if now - _mtime(entry) > self._legacy_max_age:
                    removed += _remove(entry)
            elif entry.name.endswith(".lock"):
                tags.add(entry.name.removesuffix(".lock"))
            elif entry.is_dir():
                tags.add(entry.name)
        for tag in sorted(tags - {self.tag}):
            removed += self._sweep_dead(tag)
        if removed:
            log.info("removed stale work directories", extra={"directories": removed})
        return removed

    def _sweep_dead(self, tag: str) -> int:
        """Remove another worker's directory and lock file if its lock is free (its worker
        is gone); the lock is held while removing, so no worker can take the tag meanwhile."""
        path = self.root / f"{tag}.lock"
        lock = _try_lock(path)
        if lock is None:  # a live worker
            return 0
        removed = _remove(self.root / tag) if (self.root / tag).is_dir() else 0
        with contextlib.suppress(OSError):
            path.unlink()
        lock.close()
        return removed

    def create(self, render_id: str) -> Path:
        """A new private directory for one attempt of a render."""
        self.own.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"{LEGACY_PREFIX}{render_id[:8]}-", dir=self.own))
        self._active.add(path)
        return path

    def release(self, path: Path) -> None:
        """Remove an attempt's directory, and whatever else of ours no attempt uses."""
        self._active.discard(path)
        shutil.rmtree(path, ignore_errors=True)
        self._sweep_own()

    def close(self) -> None:
        """Remove this worker's directory and release its lock."""
        self._sweep_own()
        with contextlib.suppress(OSError):
            self.own.rmdir()
        if self._lock is not None:
            with contextlib.suppress(OSError):
                (self.root / f"{self.tag}.lock").unlink()
            self._lock.close()
            self._lock = None

    def _sweep_own(self) -> int:
        if not self.own.is_dir():
            return 0
        return sum(_remove(entry) for entry in self.own.iterdir() if entry not in self._active)


def _try_lock(path: Path) -> IO[bytes] | None:
    """An exclusive flock on `path` (created if missing), or None if another process has it.

    A sweeping worker unlinks a dead worker's lock file while holding it; a process that
    opened the file before the unlink would then hold a lock on a file no longer named
    `path`, so the lock counts only if `path` is still the file locked (else retry)."""
    for _ in range(10):
        handle = path.open("a+b")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.set_inheritable(handle.fileno(), False)
            return handle
        handle.close()
    return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def _remove(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
    return 1
