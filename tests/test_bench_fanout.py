"""The fan-out benches' client protocol (bench/client_process.py), end to end on a small
scale: the gRPC client process against the bare push server, as bench.progress_fanout runs
them."""

from __future__ import annotations

import asyncio
import json

from bench.client_process import Child, Totals, percentile
from tests.support.processes import free_port


def test_totals_count_warm_ups_and_time_only_while_measuring() -> None:
    async def scenario() -> Totals:
        totals = Totals(streams=2)
        totals.arrived(5_000_000, "2000000")  # before measuring: not timed
        totals.arrived(0, "warm")
        totals.arrived(0, b"warm")
        assert totals.all_warm.is_set()
        totals.measuring = True
        totals.arrived(5_000_000, b"1000000")  # 4 ms after its publish time
        totals.arrived(5_000_000, "")  # an event without a publish time
        return totals

    totals = asyncio.run(scenario())
    assert totals.warmed == 2
    assert totals.latencies == [4.0]


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 51.0
    assert percentile(values, 0.99) == 100.0
    assert percentile([], 0.5) != percentile([], 0.5)  # NaN


async def test_grpc_clients_time_every_pushed_event_of_the_bare_server() -> None:
    port = free_port()
    server = await Child.start("-m", "bench.bare_server", str(port))
    client: Child | None = None
    try:
        await server.expect("READY", 60)
        targets = [["render-a", 3], ["render-b", 2]]
        client = await Child.start(
            "-m", "bench.grpc_clients", str(port), "no-token", json.dumps(targets)
        )
        assert (await client.expect("OPEN", 60)).split() == ["5", "0"]
        await server.send("warm")
        await server.expect("DONE", 60)
        await client.expect("READY", 60)
        await server.send("push 40 0.5")  # 20 events, round-robin over the two renders
        await server.expect("DONE", 60)
        await asyncio.sleep(3.0)  # the last pushes' arrival, with room for a loaded machine
        result = await client.result()
    finally:
        for child in (client, server):
            if child is not None:
                await child.stop()
    assert result["received"] == 10 * 3 + 10 * 2
    assert len(result["latencies"]) == result["received"]
    assert 0 <= result["p50"] <= result["p99"] <= result["max"]
