"""``python -m devstack.argocd_sim --port P --config FILE``: serve the Argo CD simulator on 127.0.0.1:P."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from devstack.argocd_sim.config import SimConfig
from devstack.argocd_sim.server import build_server, build_tls_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.argocd_sim", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--config", type=Path, required=True, help="simulator configuration (JSON or YAML)")
    parser.add_argument("--tls-port", type=int, help="also serve HTTPS here (needs tls_cert_file and tls_key_file)")
    args = parser.parse_args(argv)
    config = SimConfig.load(args.config)
    server = build_server(args.port, config)
    clock = "manual clock" if config.manual_clock else "wall clock"
    names = ", ".join(app.name for app in config.apps) or "no applications"
    print(f"Argo CD simulator on http://127.0.0.1:{args.port} ({clock}): {names}", flush=True)
    tls_server = None
    if args.tls_port:
        if not (config.tls_cert_file and config.tls_key_file):
            parser.error("--tls-port needs tls_cert_file and tls_key_file in the configuration")
        tls_server = build_tls_server(args.tls_port, server.simulator, config.tls_cert_file, config.tls_key_file)
        threading.Thread(target=tls_server.serve_forever, name="tls", daemon=True).start()
        print(f"... and on https://127.0.0.1:{args.tls_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if tls_server is not None:
            tls_server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
