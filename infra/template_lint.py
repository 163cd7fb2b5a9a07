"""cfn-lint on the synthesized templates, before anything is deployed: `make synth` runs it after `cdk synth`.

cdk-nag checks the constructs against security rules; cfn-lint checks the CloudFormation the CDK wrote
against the resource specifications (property types and allowed values, references, dependency cycles),
which is what would otherwise fail only at `cdk deploy`. Errors always fail. A warning fails unless it is
acknowledged below, with the reason it is acceptable.

    python -m infra.template_lint [TEMPLATE.json ...]     (default: cdk.out/*.template.json)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Reviewed warnings: rule id -> why it is acceptable here.
ACKNOWLEDGED: Mapping[str, str] = {
    "W3005": "CDK adds an explicit DependsOn from each function to its execution role (and the role's "
    "policies), so that the permissions exist before the function is created; for the role itself that "
    "duplicates what the function's GetAtt of the role's ARN already implies. Redundant, and harmless.",
}
DEFAULT_REGION = "us-east-1"
# Not infra.bundling.REPO_ROOT: importing it would start the CDK (node) for nothing.
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # error | warning | informational
    message: str
    where: str

    @property
    def acknowledged(self) -> bool:
        return self.severity != "error" and self.rule in ACKNOWLEDGED

    @property
    def blocking(self) -> bool:
        return self.severity == "error" or (self.severity == "warning" and not self.acknowledged)

    def __str__(self) -> str:
        return f"{self.rule} ({self.severity}) {self.where}: {self.message}"


def lint_template(template: Mapping[str, object], region: str = DEFAULT_REGION) -> list[Finding]:
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(template), config=ManualArgs(regions=[region]))
    return [
        Finding(
            rule=match.rule.id,
            severity=str(match.rule.severity).lower(),
            message=match.message,
            where="/".join(str(part) for part in match.path) or f"line {match.linenumber}",
        )
        for match in matches
    ]


def _region_of(template_file: Path) -> str:
    """The stack's region from the cloud assembly's manifest, when it names one."""
    manifest = template_file.parent / "manifest.json"
    if manifest.is_file():
        artifacts = json.loads(manifest.read_text(encoding="utf-8")).get("artifacts", {})
        for artifact in artifacts.values():
            if artifact.get("properties", {}).get("templateFile") == template_file.name:
                region = str(artifact.get("environment", "")).rsplit("/", 1)[-1]
                if region and region != "unknown-region":
                    return region
    return DEFAULT_REGION


def main(argv: Sequence[str]) -> int:
    files = [Path(arg) for arg in argv] or sorted((REPO_ROOT / "cdk.out").glob("*.template.json"))
    if not files:
        print("cfn-lint: no template to check; run `make synth` first", file=sys.stderr)
        return 2
    blocking = 0
    for file in files:
        findings = lint_template(json.loads(file.read_text(encoding="utf-8")), _region_of(file))
        errors = sum(f.severity == "error" for f in findings)
        acknowledged = [f for f in findings if f.acknowledged]
        for finding in findings:
            if finding.blocking:
                print(f"cfn-lint: {file.name}: {finding}", file=sys.stderr)
        blocking += sum(f.blocking for f in findings)
        rules = sorted({f.rule for f in acknowledged})
        reasons = "".join(f"\n  {rule}: {ACKNOWLEDGED[rule]}" for rule in rules)
        print(
            f"cfn-lint {file.name}: {errors} errors, {len(findings) - errors - len(acknowledged)} other findings, "
            f"{len(acknowledged)} acknowledged warnings{reasons}"
        )
    return 1 if blocking else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
