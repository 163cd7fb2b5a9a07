"""What a hostile registry costs the promoter: peak memory and time per bounded read.

    python -m bench.hostile_registry

Each case runs in a fresh interpreter (so that its peak RSS is its own) against a hostile server on
loopback (devstack/hostile_registry.py) in front of a real registry:

* a 200 MB error body (HTTP 500, Content-Length declared): only the first 64 KiB are read;
* an endless manifest (HTTP 200, no length): refused at ``manifest_max_bytes`` (4 MiB);
* 1,000 bytes dripped at 0.05 s each (50 s in all): cut at the whole-request deadline (10 s);
* the same body at normal speed, for the baseline.

Figures, not thresholds: the peak RSS of the process (``resource.getrusage``), its growth during the
read, the time the read took and what the server managed to send. Main read a 200 MB error body whole
(peak 432 MB) and took 50 s for the drip.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from devstack.images import push_image
from devstack.registry import start_registry

CASES = ("baseline", "error-body-200mb", "endless-manifest", "slow-drip")

_CHILD = r"""
import json, resource, sys, time
from devstack.hostile_registry import Drip, Flood, HostileRegistry
from tagrelay.adapters.registry import Registry, RegistryLimits
from tagrelay.errors import TagrelayError

case, backend = sys.argv[1], sys.argv[2]
hostile = HostileRegistry(backend)
path = r"/manifests/abc1234$"
if case == "error-body-200mb":
    hostile.misbehave(path, Flood(status=500, declare_length=True))
elif case == "endless-manifest":
    hostile.misbehave(path, Flood(status=200, content_type="application/vnd.oci.image.manifest.v1+json"))
elif case == "slow-drip":
    hostile.misbehave(path, Drip(interval=0.05))
registry = Registry(hostile.url, limits=RegistryLimits())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    registry.get_manifest("bench/web", "abc1234")
    outcome = "read"
except TagrelayError as exc:
    outcome = f"{type(exc).__name__}: {str(exc)[:90]}"
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
hostile.stop()
served = [s for s in hostile.served if "abc1234" in s.path]
print(json.dumps({"elapsed_s": elapsed, "peak_mb": peak / 1024, "growth_mb": (peak - before) / 1024,
                  "sent_mb": sum(s.sent for s in served) / 2**20, "requests": len(served), "outcome": outcome}))
"""


def main() -> int:
    print("hostile registry: one manifest read through the registry adapter, default limits\n")
    with tempfile.TemporaryDirectory(prefix="tagrelay-bench-hostile-") as tmp:
        registry = start_registry(Path(tmp))
        try:
            push_image(registry.url, "bench/web", ["abc1234"], content=b"bench")
            print(f"  {'case':<20}{'time':>9}{'peak RSS':>11}{'growth':>9}{'sent':>10}  outcome")
            for case in CASES:
                result = subprocess.run(
                    [sys.executable, "-c", _CHILD, case, registry.url], capture_output=True, text=True, check=True
                )
                figures = json.loads(result.stdout.strip().splitlines()[-1])
                print(
                    f"  {case:<20}{figures['elapsed_s']:>8.2f}s{figures['peak_mb']:>9.0f} MB"
                    f"{figures['growth_mb']:>7.1f} MB{figures['sent_mb']:>7.1f} MB  {figures['outcome']}"
                )
        finally:
            registry.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
