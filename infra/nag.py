"""cdk-nag 3 acknowledgements, placed on the construct that causes the finding, each with its reason.

cdk-nag 3 is a CDK policy-validation plugin: an unacknowledged finding makes `app.synth()` fail. An
acknowledgement applies to the construct it is made on and everything below it, so each one sits on the
smallest construct that covers its finding. Wildcard findings (AwsSolutions-IAM5) are acknowledged per
resource string, rendered the way cdk-nag renders CloudFormation references.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import IConstruct


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))


def wildcard_resource_finding(scope: IConstruct, resource: str) -> str:
    """The AwsSolutions-IAM5 finding id of an IAM resource with a wildcard, e.g. `...:key/*`."""
    return f"AwsSolutions-IAM5[Resource::{render_reference(cdk.Stack.of(scope).resolve(resource))}]"


def render_reference(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag prints it: `<LogicalId.Attr>`, `<AWS::AccountId>`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render_reference(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>"
    raise ValueError(f"cannot render {value!r} as a cdk-nag finding")
