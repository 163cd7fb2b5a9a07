"""``python -m devstack.github_standin --port P --data-dir DIR [--prefix /api/v3] [--config FILE]``."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from devstack.github_standin.config import StandinConfig, normalise_prefix
from devstack.github_standin.server import build_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.github_standin", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--data-dir", type=Path, required=True, help="bare repositories live in DIR/<owner>/<name>.git")
    parser.add_argument("--prefix", default="", help="API base path, e.g. /api/v3 as on GitHub Enterprise")
    parser.add_argument("--config", type=Path, help="JSON file with accepted tokens and GitHub Apps")
    args = parser.parse_args(argv)
    config = StandinConfig.load(args.config) if args.config else StandinConfig()
    prefix = normalise_prefix(args.prefix)
    server = build_server(args.port, args.data_dir, prefix, config)
    print(f"GitHub stand-in on http://127.0.0.1:{args.port}{prefix} serving {args.data_dir}", flush=True)
    # RunningServer.stop() sends SIGTERM: leave serve_forever so server_close() ends the git children.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
