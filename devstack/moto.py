"""moto in server mode: the local stand-in for DynamoDB, KMS, Secrets Manager and STS."""

from __future__ import annotations

import sys
from pathlib import Path

from devstack.process import RunningServer, free_port, start_server

# Dummy credentials: moto accepts anything, and real AWS would refuse these.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def start_moto(workdir: Path) -> RunningServer:
    """Start ``moto_server`` on a free loopback port. Point boto3 at it with AWS_ENDPOINT_URL=<url>."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    moto_server = Path(sys.executable).with_name("moto_server")
    return start_server(
        "moto",
        [str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
        url=url,
        ready_path="/moto-api/",
        log_dir=workdir,
        env=LOCAL_AWS_ENV,
    )


def aws_env(server: RunningServer) -> dict[str, str]:
    """Environment variables that send every boto3 client to this moto server."""
    return {**LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": server.url}
