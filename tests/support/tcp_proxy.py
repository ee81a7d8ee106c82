"""A TCP proxy in its own process, for injecting network faults between a service and a
dependency: kill it (connections reset, new ones refused) or pause it with SIGSTOP (the
kernel still accepts connections, but nothing is forwarded: a silent network).

Run as `python -m tests.support.tcp_proxy LISTEN_PORT TARGET_HOST TARGET_PORT`; it prints
`ready` once listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time

from render_common.config import ROOT
from tests.support.processes import free_port


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(listen_port: int, host: str, port: int) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, server_w), _pipe(server_r, client_w))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port, reuse_address=True)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


class TcpProxy:
    """The proxy process: 127.0.0.1:`port` forwards to `target_host`:`target_port`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> TcpProxy:
        """Start (or restart, on the same port) and wait until it listens."""
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.tcp_proxy",
                str(self.port),
                self.target_host,
                str(self.target_port),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"tcp proxy did not start: {line!r}")
        return self

    def pause(self) -> None:
        """SIGSTOP: connections stay open (and new ones are accepted) but go silent."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: every connection through it breaks, new ones are refused."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None
            # The listening port is free again once the kernel has closed it.
            time.sleep(0.05)


if __name__ == "__main__":
    listen, target_host, target_port = sys.argv[1], sys.argv[2], sys.argv[3]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(int(listen), target_host, int(target_port)))
