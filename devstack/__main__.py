"""`python -m devstack up`: the local stack, kept running (devstack/up.py); `python -m devstack demo`: `make demo`."""

from __future__ import annotations

import sys

USAGE = "usage: python -m devstack {up,demo} [options]"


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("up", "demo"):
        print(USAGE, file=sys.stderr)
        return 2
    if argv[0] == "up":
        from devstack.up import main as up

        return up(argv[1:])
    from devstack.demo import main as demo

    return demo(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
