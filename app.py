#!/usr/bin/env python3
"""CDK entry point (`make synth`, `npx cdk synth|deploy [-c config=FILE]`); see docs/deploy.md."""

from __future__ import annotations

import os
import sys

from infra.bundling import BundlingError
from infra.cdk_app import build_app
from tagrelay.config import ConfigError


def main() -> int:
    try:
        app, _stack = build_app(
            outdir=os.environ.get("CDK_OUTDIR", "cdk.out"),
            # Set by the CDK CLI from the caller's AWS profile; deploy.account/region in the config win.
            default_account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            default_region=os.environ.get("CDK_DEFAULT_REGION"),
        )
    except (ConfigError, BundlingError, ValueError) as error:
        print(f"tagrelay: {error}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
