"""The table and the verdicts of bench/progress_fanout.py."""

from __future__ import annotations

from typing import Any

from render_common.config import Settings

SPREAD_P99_TARGET_MS = 5.0
BURST_RATIO_TARGET = 1.5

Row = dict[str, Any]


def _table(rows: list[Row]) -> None:
    print()
    print(
        f"{'server':<9}{'phase':<8}{'watchers':>9}{'failed':>7}{'received':>10}{'expected':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'RSS MB':>9}{'redis conns':>12}"
        f"{'CPU us/delivery':>17}"
    )
    for r in rows:
        conns = r["redis_connections"] if r["server"] == "progress" else "-"
        print(
            f"{r['server']:<9}{r['phase']:<8}{r['open']:>9}{r['failed']:>7}{r['received']:>10}"
            f"{r['expected']:>10}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['max']:>9.1f}"
            f"{r['rss_mb']:>9.0f}{conns!s:>12}{'+'.join(f'{v:.1f}' for v in r['cpu_us']):>17}"
        )
    print("CPU us/delivery: the server process' CPU per event delivered (progress: + redis')")


def _checks(
    by: dict[tuple[str, str], Row], rows: list[Row], idle_connections: int
) -> list[tuple[str, bool, str]]:
    spread, burst = by[("progress", "spread")], by[("progress", "burst")]
    bare_spread, bare_burst = by[("bare", "spread")], by[("bare", "burst")]
    settings = Settings()
    return [
        (
            "spread p99 < 5 ms",
            spread["p99"] < SPREAD_P99_TARGET_MS,
            f"{spread['p99']:.2f} ms (bare {bare_spread['p99']:.2f} ms, "
            f"ratio {spread['p99'] / bare_spread['p99']:.2f}x)",
        ),
        (
            "burst p99 <= 1.5x bare",
            burst["p99"] <= BURST_RATIO_TARGET * bare_burst["p99"],
            f"{burst['p99']:.2f} ms vs bare {bare_burst['p99']:.2f} ms "
            f"(ratio {burst['p99'] / bare_burst['p99']:.2f}x)",
        ),
        (
            "redis connections constant",
            len({idle_connections, spread["redis_connections"], burst["redis_connections"]}) <= 1
            or max(spread["redis_connections"], burst["redis_connections"])
            <= settings.progress_readers + settings.progress_redis_pool_size,
            f"idle {idle_connections}, {spread['open']} watchers {spread['redis_connections']}, "
            f"burst {burst['redis_connections']}",
        ),
        (
            "no loss",
            all(r["received"] == r["expected"] and r["failed"] == 0 for r in rows),
            ", ".join(f"{r['server']}/{r['phase']} {r['received']}/{r['expected']}" for r in rows),
        ),
    ]


def report(rows: list[Row], idle_connections: int, idle_rss: dict[str, float], strict: bool) -> int:
    """Print the table and the verdicts; the exit status (1 on a MISS when `strict`)."""
    _table(rows)
    print(
        f"idle: RSS progress {idle_rss['progress']:.0f} MB, bare {idle_rss['bare']:.0f} MB; "
        f"redis connections held by progress {idle_connections}"
    )
    by = {(r["server"], r["phase"]): r for r in rows}
    spread = by[("progress", "spread")]
    per_stream_kb = (spread["rss_mb"] - idle_rss["progress"]) * 1024 / max(spread["open"], 1)
    print(f"progress memory per open stream: {per_stream_kb:.1f} KB")
    missed = False
    for name, ok, detail in _checks(by, rows, idle_connections):
        missed |= not ok
        print(f"{'PASS' if ok else 'MISS'}  {name}: {detail}")
    return 1 if missed and strict else 0
