"""`make bench`: run each benchmark module in its own process and print its figures.

Each module is also runnable alone, e.g. `python -m bench.intake`.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

MODULES = (
    "bench.intake",
    "bench.progress_fanout",
    "bench.sse_fanout",
    "bench.ssr",
    "bench.ssr_vertical",
    "bench.lambda_fanout",
)


def main() -> int:
    """Run every benchmark present; return non-zero if one failed."""
    failed = []
    for module in MODULES:
        if importlib.util.find_spec(module) is None:
            print(f"== {module}: not present, skipped", flush=True)
            continue
        print(f"== {module}", flush=True)
        if subprocess.call([sys.executable, "-m", module]) != 0:
            failed.append(module)
    if failed:
        print(f"failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
