"""CPU seconds of the benchmark's sides, sampled from /proc.

Wall time on a machine shared by other jobs stretches with their load, and the sides do not
stretch alike (the CLI's webpack bundling and browser launch are CPU-heavy, so it slows
down most): at load 25 on 2 cores `npx remotion render` took three times its quiet time.
CPU seconds hold on a busy machine, and on a quiet 2-core one a render that keeps both
cores busy takes about half its CPU seconds of wall time, so both figures are printed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, own CPU-s so far)."""
    table: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS)
    return table


def _tree(table: dict[int, tuple[int, float]], roots: list[int]) -> dict[int, float]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, stack = {}, list(roots)
    while stack:
        pid = stack.pop()
        if pid in table and pid not in found:
            found[pid] = table[pid][1]
            stack.extend(children.get(pid, ()))
    return found


class Started:
    """The pids of the processes a side starts (a sampler's `roots`): a side's command is
    started in another thread, which records its pid here."""

    def __init__(self) -> None:
        self._pids: list[int] = []
        self._lock = threading.Lock()

    def add(self, pid: int) -> None:
        """Record a started process."""
        with self._lock:
            self._pids.append(pid)

    def __call__(self) -> list[int]:
        with self._lock:
            return list(self._pids)


class TreeSampler:
    """CPU-s used by the process trees under `roots` while it runs, sampled every
    `interval` s from /proc: each process's own CPU at the last sample it was seen in.

    Sampling, not the reaped children's figures: `npx remotion render` ends before its
    Chromium is reaped, which then no ancestor here counts; a process once seen is followed
    after it is re-parented. A process is missed for at most its last `interval` (or
    entirely if it lives shorter). The sampling thread's own CPU (reading /proc for every
    process on the machine) is not counted when this process is among those sampled.
    """

    def __init__(self, roots: Callable[[], list[int]], interval: float = 0.5) -> None:
        self._roots, self._interval = roots, interval
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._overhead = 0.0  # CPU-s of the sampling thread

    def _sample(self) -> None:
        # A process once seen stays followed when its parent ends and it is re-parented.
        with self._lock:
            followed = [*self._roots(), *self._last]
        seen = _tree(_processes(), followed)
        with self._lock:
            self._last.update(seen)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()
            with self._lock:
                self._overhead = time.thread_time()

    def __enter__(self) -> TreeSampler:
        self._start = _tree(_processes(), self._roots())
        self._last = dict(self._start)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        """CPU-s used since the start (after the exit: in all)."""
        with self._lock:
            used = sum(cpu - self._start.get(pid, 0.0) for pid, cpu in self._last.items())
            return used - self._overhead if os.getpid() in self._last else used
