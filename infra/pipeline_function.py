"""A tagrelay Lambda function: its own role (inline statements only), its own log group, active tracing.

The promoter and the tracker are both built from this, so that they share the runtime, the packaging and
the logging setup, and so that neither gets an AWS managed policy (AWSLambdaBasicExecutionRole may create
and write every log group of the account; here a function may only write to its own).
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import nag, pipeline_metrics
from infra.bundling import CONFIG_FILE_IN_ASSET, LAMBDA_TASK_ROOT
from tagrelay.config import CONFIG_ENV_VAR, Config, VpcPlacement
from tagrelay.deployment import check_log_retention

# Pinned, and the asset's wheels are installed for exactly this version (bundling.py; the AwsSolutions-L1
# acknowledgement below says why it is not "the newest"): move both together, after testing on the new one.
RUNTIME = lambda_.Runtime.PYTHON_3_13
PYTHON_VERSION = RUNTIME.name.removeprefix("python")
LEDGER_TABLE_ENV_VAR = "TAGRELAY_LEDGER_TABLE"

# Lambda creates and removes the network interfaces of a VPC function with the execution role's
# permissions. These EC2 calls do not support resource-level permissions (Describe*) or are checked
# by Lambda against "*" when the function is created, so they cannot be scoped to the subnets.
VPC_ENI_ACTIONS = (
    "ec2:AssignPrivateIpAddresses",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:UnassignPrivateIpAddresses",
)


# CloudWatch Logs accepts only these retention periods (days -> CDK's name for it; tests/cdk checks the pairs).
RETENTION_PERIODS: Mapping[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def retention_days(days: int) -> logs.RetentionDays:
    """deploy.log_retention_days as CloudWatch Logs accepts it (tagrelay.deployment lists the periods)."""
    if problem := check_log_retention(days):
        raise ValueError(problem)
    return RETENTION_PERIODS[days]


class PipelineFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        code: lambda_.Code,
        service: str,
        description: str,
        memory_size: int,
        timeout: cdk.Duration,
        ledger_table_name: str,
        vpc_placement: VpcPlacement | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        function_name = f"{config.deploy.stack_name}-{service}"
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"tagrelay {service}: execution role (inline, least-privilege statements only)",
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=retention_days(config.deploy.log_retention_days),
            # Kept when the stack goes, but removed when the deploy that created it fails and rolls
            # back, so that the retry can create it again under the same name.
            removal_policy=cdk.RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        self.log_group.grant_write(self.role)
        environment: Mapping[str, str] = {
            CONFIG_ENV_VAR: f"{LAMBDA_TASK_ROOT}/{CONFIG_FILE_IN_ASSET}",
            LEDGER_TABLE_ENV_VAR: ledger_table_name,
            "POWERTOOLS_SERVICE_NAME": service,
            "POWERTOOLS_METRICS_NAMESPACE": pipeline_metrics.NAMESPACE,
        }
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64
            if config.deploy.architecture == "arm64"
            else lambda_.Architecture.X86_64,
            handler=f"tagrelay.handlers.{service}.handler",
            code=code,
            memory_size=memory_size,
            timeout=timeout,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment=dict(environment),
        )
        nag.acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"Runtime pinned to {RUNTIME.name} on purpose: the asset's binary wheels (cryptography, "
            "pydantic-core, cffi) are installed for exactly this Python version, so runtime and packaging "
            "move together in one reviewed change (infra/pipeline_function.py RUNTIME), not on a CDK upgrade.",
        )
        # The role's default policy holds what CDK grants for the function itself (its log group, X-Ray,
        # the on-failure queue); of those, only X-Ray's actions have no resource-level permissions.
        nag.acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level "
            "permissions (Service Authorization Reference, AWS X-Ray), so '*' is the only valid resource.",
        )
        if vpc_placement is not None:
            self._place_in_vpc(vpc_placement)

    def _place_in_vpc(self, placement: VpcPlacement) -> None:
        """Existing subnets and security groups, by id: set on the function resource itself, because
        the L2 `vpc` property wants a VPC object (a context lookup needs an AWS account at synth)."""
        function = self.function.node.default_child
        if not isinstance(function, lambda_.CfnFunction):
            raise TypeError(f"expected the function's CfnFunction, got {function!r}")
        function.vpc_config = lambda_.CfnFunction.VpcConfigProperty(
            subnet_ids=list(placement.subnet_ids), security_group_ids=list(placement.security_group_ids)
        )
        eni_policy = self.add_policy(
            "VpcNetworkInterfaces",
            iam.PolicyStatement(actions=list(VPC_ENI_ACTIONS), resources=["*"]),
        )
        nag.acknowledge(
            eni_policy,
            "AwsSolutions-IAM5[Resource::*]",
            "Lambda manages the network interfaces of a VPC function with its execution role; the "
            "ec2:Describe* calls support no resource-level permissions and Lambda validates the "
            "Create/Delete/Assign calls against '*' at function creation (these six actions are exactly "
            "AWSLambdaVPCAccessExecutionRole's EC2 part, without its log permissions on every log group).",
        )

    def add_policy(self, policy_id: str, *statements: iam.PolicyStatement) -> iam.Policy:
        """Statements in a policy of their own, so that a cdk-nag acknowledgement can cover exactly them.

        The function waits for the policy: Lambda checks some permissions when the function is created.
        """
        policy = iam.Policy(self, policy_id, statements=list(statements), roles=[self.role])
        self.function.node.add_dependency(policy)
        return policy
