"""What the CDK tests share: synthesizing the app from a configuration file, as `make synth` does.

Bundling is skipped (it is `make synth`'s job); the template is read from the cloud assembly, because
with cdk-nag on the app `Template.from_stack` raises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template
from ruamel.yaml import YAML

from infra.cdk_app import build_app
from infra.stack import TagrelayStack
from tagrelay.config import Config, load_config

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "mosaic-life.yaml"
SKIP_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}


@dataclass
class Synthesized:
    config: Config
    stack: TagrelayStack
    template: Template
    resources: dict[str, dict[str, Any]]
    warnings: list[str]

    def logical_id(self, construct: Any) -> str:
        return self.stack.get_logical_id(construct.node.default_child)

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}

    def function_id(self, service: str) -> str:
        functions = {
            "promoter": self.stack.promoter.function,
            "tracker": self.stack.tracker.function,
            "reconciler": self.stack.reconciler.function,
        }
        return self.logical_id(functions[service])

    def statements_of(self, service: str) -> list[dict[str, Any]]:
        """Every statement of the policies attached to a function's role."""
        role = self.resources[self.function_id(service)]["Properties"]["Role"]["Fn::GetAtt"][0]
        return [
            statement
            for policy in self.of_type("AWS::IAM::Policy").values()
            if {"Ref": role} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]


def synthesize(config_file: Path, outdir: Path) -> Synthesized:
    app, stack = build_app(config_file, outdir=str(outdir), context=SKIP_BUNDLING)
    artifact = app.synth().get_stack_artifact(stack.artifact_id)
    template: dict[str, Any] = artifact.template
    warnings = [str(message.entry.data) for message in artifact.messages if message.level.value == "WARNING"]
    return Synthesized(load_config(config_file), stack, Template.from_json(template), template["Resources"], warnings)


def write_config(folder: Path, change: Any) -> Path:
    data = YAML(typ="safe").load(EXAMPLE.read_text(encoding="utf-8"))
    change(data)
    path = folder / "tagrelay.yaml"
    path.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
    return path
