"""Client processes of the fan-out benches: both sides of their line protocol, in one place.

A client process (bench/grpc_clients.py, bench/sse_clients.py) holds many event streams on
one loop and speaks over stdin/stdout:

- it prints `OPEN ok failed` once every stream has answered (its first message);
- `READY` once every stream has seen the untimed `warm` event (so the server has finished
  opening them before anything is timed);
- it records latencies until a line (`STOP`) arrives on stdin;
- then prints `RESULT {"received": n, "p50": .., "p99": .., "max": .., "latencies": [...],
  "published": [...]}`, a latency being the arrival time (time.time_ns()) minus the publish
  time carried in the event's `message`, in ms, and `published` those publish times (so the
  parent can tell which deliveries did not arrive). RESULT carries every latency
  (bench/sse_fanout pools the clients'), so the line runs to megabytes: the parent (`Child`)
  reads lines of up to RESULT_LINE_LIMIT bytes.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from render_common.config import ROOT

RESULT_LINE_LIMIT = 256 * 1024 * 1024  # bytes of one line from a client process
OPEN_TIMEOUT = 120.0  # seconds for every stream to open, then for every one to be warm


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile of `values` (nearest rank); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (NaN once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ the client's side


class Totals:
    """What all the streams of one client process saw."""

    def __init__(self, streams: int) -> None:
        self.streams = streams
        self.latencies: list[float] = []
        self.published: list[int] = []  # each measured arrival's publish time (ns)
        self.warmed = 0
        self.all_warm = asyncio.Event()
        self.measuring = False

    def arrived(self, now_ns: int, message: str | bytes) -> None:
        """One event arrived at `now_ns` carrying `message` ("warm", or a publish time)."""
        if message in ("warm", b"warm"):
            self.warmed += 1
            if self.warmed == self.streams:
                self.all_warm.set()
        elif self.measuring and message and message.isdigit():
            published = int(message)
            self.latencies.append((now_ns - published) / 1e6)
            self.published.append(published)


async def report(totals: Totals, opened: Sequence[bool]) -> None:
    """The protocol once every stream answered: OPEN, warm-up, READY, STOP, RESULT."""
    gc.collect()
    gc.freeze()
    gc.disable()  # the measuring client's own pauses are not the server's latency
    print(f"OPEN {sum(opened)} {len(opened) - sum(opened)}", flush=True)
    await asyncio.wait_for(totals.all_warm.wait(), timeout=OPEN_TIMEOUT)
    await asyncio.sleep(0.5)
    totals.measuring = True
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.readline()  # STOP
    totals.measuring = False
    latencies = totals.latencies
    summary = {
        "received": len(latencies),
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies) if latencies else float("nan"),
        "latencies": latencies,
        "published": totals.published,
    }
    _write_line("RESULT " + json.dumps(summary))


def _write_line(line: str) -> None:
    """One whole line on stdout, however long (written in blocking mode, then flushed)."""
    sys.stdout.flush()
    os.set_blocking(sys.stdout.fileno(), True)
    sys.stdout.buffer.write(line.encode() + b"\n")
    sys.stdout.buffer.flush()


def client_arguments(argv: Sequence[str]) -> tuple[int, str, list[tuple[str, int]]]:
    """A client's command line, `PORT TOKEN SPEC`, SPEC being a JSON [[render_id, n], ...]."""
    port, token, spec = argv[:3]
    return int(port), token, [(str(r), int(c)) for r, c in json.loads(spec)]


# ------------------------------------------------------------------ the parent's side


class Child:
    """A child process speaking line commands over stdin/stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, *args: str, env: dict[str, str] | None = None) -> Child:
        """`python *args` in the repository root, with pipes for stdin and stdout."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env=env,
            limit=RESULT_LINE_LIMIT,  # RESULT: megabytes on one line
        )
        return cls(process)

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    async def send(self, line: str) -> None:
        """Write one line to the child's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def expect(self, prefix: str, limit: float) -> str:
        """The rest of the next line starting with `prefix` (other lines are skipped)."""
        assert self.process.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.process.stdout.readline(), limit)
            if not raw:
                raise RuntimeError(f"child exited while waiting for {prefix}")
            line = raw.decode().strip()
            if line.startswith(prefix):
                return line[len(prefix) :].strip()

    async def result(self, limit: float = 60) -> dict[str, Any]:
        """Stop a client process' measuring (STOP) and return its RESULT."""
        await self.send("STOP")
        summary: dict[str, Any] = json.loads(await self.expect("RESULT", limit))
        return summary

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
