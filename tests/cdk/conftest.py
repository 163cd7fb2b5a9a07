"""CDK tests run in one process (synth pays ~3 s of node/jsii start once); silence jsii's node-20 banner."""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
