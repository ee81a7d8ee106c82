"""CPU seconds of the benchmark's sides, from /proc and getrusage.

Wall time on a machine shared by other jobs stretches with their load, and the sides do not
stretch alike (the CLI's webpack bundling and browser launch are CPU-heavy, so it slows
down most): at load 25 on 2 cores `npx remotion render` took three times its quiet time.
CPU seconds hold on a busy machine, and on a quiet 2-core one a render that keeps both
cores busy takes about half its CPU seconds of wall time, so both figures are printed.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, float, float]]:
    """pid -> (parent pid, own CPU-s, CPU-s of its reaped children)."""
    table: dict[int, tuple[int, float, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        own = (int(fields[11]) + int(fields[12])) / TICKS
        reaped = (int(fields[13]) + int(fields[14])) / TICKS
        table[int(entry.name)] = (int(fields[1]), own, reaped)
    return table


def tree_seconds(root: int, *, root_reaped: bool = True) -> float:
    """CPU-s so far of `root` and its live descendants, each with its reaped children.

    `root_reaped` False leaves out what the root's own reaped children used (this process:
    the CLI runs it waited for, which are measured on their own).
    """
    table = _processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            _, own, reaped = table[pid]
            total += own + (reaped if pid != root or root_reaped else 0.0)
        stack.extend(children.get(pid, ()))
    return total


def waited_children_seconds() -> float:
    """CPU-s so far of this process's children that ended and were waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def in_process_seconds() -> float:
    """CPU-s so far of this process and its live children (render host, Chromium, Redis)."""
    return tree_seconds(os.getpid(), root_reaped=False)
