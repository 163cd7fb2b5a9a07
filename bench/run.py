"""`make bench`: every benchmark, one after the other, each printing its figures.

    python -m bench.run [NAME ...]     # default: all of them

Figures, never thresholds: this machine is shared and noisy, so compare medians across runs.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

# Benchmark modules in the order they run; each runs as `python -m MODULE` in its own interpreter.
BENCHMARKS = {
    "promoter": "bench.promoter",
    "reach": "bench.reach",
    "hostile-registry": "bench.hostile_registry",
    "signatures": "bench.signature_verify",
    "tracker": "bench.tracker",
    "reconcile": "bench.reconcile",
    "github-standin": "bench.github_standin_latency",
    "asset": "bench.asset",
}


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        module_name = BENCHMARKS[name]
        if importlib.util.find_spec(module_name) is None:
            print(f"== {name}: not present in this checkout\n")
            continue
        print(f"== {name} ({module_name})")
        started = time.monotonic()
        status |= subprocess.run([sys.executable, "-m", module_name], check=False).returncode
        print(f"== {name}: {time.monotonic() - started:.1f} s\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
