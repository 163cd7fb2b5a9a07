"""The CDK stack, synthesized through the same build_app as `make synth` (feature flags and cdk-nag included).

Each configuration is synthesized once per module (bundling skipped: it is `make synth`'s job); the
template is read from the cloud assembly, because with cdk-nag on the app `Template.from_stack` raises.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Match, Template

from infra import pipeline_metrics
from infra.bundling import BundlingError, bundle_inputs, export_runtime_requirements
from infra.cdk_app import build_app
from infra.ledger_table import LEDGER_ACTIONS
from infra.nag import render_reference
from infra.pipeline_function import RETENTION_PERIODS, VPC_ENI_ACTIONS, retention_days
from tagrelay.adapters import ledger_schema
from tagrelay.config import load_config
from tests.cdk.support import EXAMPLE, SKIP_BUNDLING, Synthesized, synthesize, write_config

pytestmark = pytest.mark.cdk

REPOSITORY_ARNS = [
    "arn:aws:ecr:us-east-1:033691785857:repository/mosaic-life/core-api",
    "arn:aws:ecr:us-east-1:033691785857:repository/mosaic-life/web",
]
# The only actions AWS offers no resource-level permissions for, among those the functions need.
WILDCARD_RESOURCE_ACTIONS = {"ecr:GetAuthorizationToken", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
WILDCARD_RESOURCE_ACTIONS_IN_VPC = WILDCARD_RESOURCE_ACTIONS | set(VPC_ENI_ACTIONS)
GITHUB_APP_KEY_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:tagrelay/github-app-key-AbC123"
SIGNING_KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SIGNING_KEY_ALIAS = "alias/mosaic-life-cosign"
OPERATOR_ROLE = "arn:aws:iam::111122223333:role/platform-oncall"


def _everything_else(data: dict[str, Any]) -> None:
    """Every optional deploy feature on, and the other spellings of secrets and keys."""
    data["deploy"] = {
        "stack_name": "tagrelay-ops",
        "account": "111122223333",
        "region": "eu-west-1",
        "architecture": "x86_64",
        "log_retention_days": 30,
        "alarm_email": "platform@example.com",
        "tracker_vpc": {
            "subnet_ids": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
            "security_group_ids": ["sg-0ccccccccccccccc3"],
        },
        "operators_role_arns": [OPERATOR_ROLE],
    }
    data["tracking"]["schedule_minutes"] = 5
    data["reconcile"] = {"schedule_minutes": 15}
    data["ledger"]["table"] = "ops-ledger"
    data["github"]["auth"] = {"app": {"app_id": 123456, "private_key_secret": GITHUB_APP_KEY_ARN}}
    data["argocd"]["refresh_after_commit"] = False
    data["apps"]["mosaic-life"]["signature"] = {"key": {"kms_key_id": SIGNING_KEY_ARN}}


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """examples/mosaic-life.yaml as it is."""
    return synthesize(EXAMPLE, tmp_path_factory.mktemp("default-out"))


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    folder = tmp_path_factory.mktemp("variant")
    return synthesize(write_config(folder, _everything_else), folder / "out")


@pytest.fixture(scope="module")
def without_argocd(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """No Argo CD, and key-pair signatures from a KMS key named by its alias."""

    def change(data: dict[str, Any]) -> None:
        data.pop("argocd")
        data["apps"]["mosaic-life"]["signature"] = {"key": {"kms_key_id": SIGNING_KEY_ALIAS}}

    folder = tmp_path_factory.mktemp("no-argocd")
    return synthesize(write_config(folder, change), folder / "out")


@pytest.fixture(params=["default", "variant"])
def any_stack(request: pytest.FixtureRequest) -> Synthesized:
    synthesized: Synthesized = request.getfixturevalue(request.param)
    return synthesized


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def all_policy_documents(synthesized: Synthesized) -> Iterator[dict[str, Any]]:
    for resource in synthesized.resources.values():
        properties = resource.get("Properties", {})
        for key in ("PolicyDocument", "AssumeRolePolicyDocument"):
            if key in properties:
                yield properties[key]
        for inline in properties.get("Policies", []):
            yield inline["PolicyDocument"]


# --- event pattern and schedule -------------------------------------------------------------------


def test_push_rule_matches_exactly_successful_pushes_to_the_configured_repositories(default: Synthesized) -> None:
    rule = default.resources[default.logical_id(default.stack.promoter.rule)]
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.ecr"],
        "detail-type": ["ECR Image Action", "ECR Referrer Action"],
        "detail": {
            "action-type": ["PUSH", "UPDATE_STORAGE_CLASS"],  # and archives: an archived deployed image alerts
            "result": ["SUCCESS"],
            "repository-name": ["mosaic-life/core-api", "mosaic-life/web"],
        },
    }
    # No image-tag filter: cosign `.sig` pushes must reach the promoter too.
    assert "image-tag" not in json.dumps(rule["Properties"]["EventPattern"])
    assert rule["Properties"]["State"] == "ENABLED"


def test_tracker_runs_on_the_configured_schedule(default: Synthesized, variant: Synthesized) -> None:
    for synthesized, expression, seconds in ((default, "rate(1 minute)", 60), (variant, "rate(5 minutes)", 300)):
        synthesized.template.has_resource_properties(
            "AWS::Events::Rule",
            {
                "ScheduleExpression": expression,
                "Targets": [
                    Match.object_like(
                        {
                            "Arn": {"Fn::GetAtt": [synthesized.function_id("tracker"), "Arn"]},
                            "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": seconds},
                        }
                    )
                ],
            },
        )


def test_the_reconcile_sweep_runs_on_its_schedule_and_a_failed_run_is_not_retried(
    default: Synthesized, variant: Synthesized
) -> None:
    for synthesized, expression, seconds in ((default, "rate(10 minutes)", 600), (variant, "rate(15 minutes)", 900)):
        function = synthesized.function_id("reconciler")
        synthesized.template.has_resource_properties(
            "AWS::Events::Rule",
            {
                "ScheduleExpression": expression,
                "Targets": [
                    Match.object_like(
                        {
                            "Arn": {"Fn::GetAtt": [function, "Arn"]},
                            "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": seconds},
                        }
                    )
                ],
            },
        )
        properties = synthesized.resources[function]["Properties"]
        assert properties["Handler"] == "tagrelay.handlers.reconciler.handler"
        assert properties["Timeout"] == seconds  # a run ends before the next one starts
        synthesized.template.has_resource_properties(
            "AWS::Lambda::EventInvokeConfig", {"FunctionName": {"Ref": function}, "MaximumRetryAttempts": 0}
        )


def test_the_reconcile_sweep_has_the_promoters_access_and_nothing_more(any_stack: Synthesized) -> None:
    def actions(service: str) -> set[tuple[str, str]]:
        return {
            (action, json.dumps(statement["Resource"], sort_keys=True))
            for statement in any_stack.statements_of(service)
            for action in as_list(statement["Action"])
            # Each function's own log group and X-Ray are granted per function; the promoter's queue is its
            # on-failure destination (the sweep has none).
            if not action.startswith(("logs:", "xray:", "sqs:"))
        }

    sweep, promoter = actions("reconciler"), actions("promoter")
    assert sweep and {action for action, _ in sweep} == {action for action, _ in promoter}
    assert len(sweep) == len(promoter)
    assert not any(action in ("dynamodb:Scan", "ecr:ListImages", "lambda:InvokeFunction") for action, _ in sweep)
    # Nobody may invoke it but its schedule (the promoter's operators may not).
    function = any_stack.function_id("reconciler")
    invokers = [
        p["Properties"]["Principal"]
        for p in any_stack.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] in ({"Fn::GetAtt": [function, "Arn"]}, {"Ref": function})
    ]
    assert invokers == ["events.amazonaws.com"]


def test_the_reconcile_sweep_alarms_on_two_failed_runs_and_on_a_release_stuck_waiting(
    default: Synthesized, variant: Synthesized
) -> None:
    for synthesized, seconds in ((default, 600), (variant, 900)):
        errors = alarm(synthesized, "ReconcilerErrors")
        assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
        assert dimensions(errors) == {"FunctionName": {"Ref": synthesized.function_id("reconciler")}}
        assert (errors["Period"], errors["EvaluationPeriods"], errors["DatapointsToAlarm"]) == (seconds, 2, 2)
        stuck = alarm(synthesized, "ReleasesStuckWaiting")
        assert (stuck["Namespace"], stuck["MetricName"], stuck["Statistic"]) == (
            "tagrelay",
            "ReleasesStuckWaiting",
            "Maximum",
        )
        assert dimensions(stuck) == {"service": "reconciler"}
        assert (stuck["Period"], stuck["Threshold"], stuck["EvaluationPeriods"]) == (seconds, 1, 1)
        assert stuck["TreatMissingData"] == "notBreaching"


# --- dead-letter queue and retries ----------------------------------------------------------------


def test_undeliverable_and_failed_events_both_reach_the_dead_letter_queue(default: Synthesized) -> None:
    queue = default.logical_id(default.stack.promoter.dead_letter_queue)
    promoter = default.function_id("promoter")
    rule = default.resources[default.logical_id(default.stack.promoter.rule)]
    assert rule["Properties"]["Targets"] == [
        {
            "Arn": {"Fn::GetAtt": [promoter, "Arn"]},
            "Id": "Target0",
            "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [queue, "Arn"]}},
            "RetryPolicy": {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 6 * 3600},
        }
    ]
    default.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": promoter},
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 6 * 3600,
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue, "Arn"]}}},
        },
    )
    # EventBridge may send to the queue (for this rule only); the promoter may, for its own failures.
    default.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "sqs:SendMessage",
                                "Effect": "Allow",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Condition": {
                                    "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id(default), "Arn"]}}
                                },
                            }
                        )
                    ]
                )
            }
        },
    )
    assert any(
        "sqs:SendMessage" in as_list(s["Action"]) and s["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
        for s in default.statements_of("promoter")
    )
    default.template.has_resource_properties(
        "AWS::SQS::Queue", {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 14 * 24 * 3600}
    )


def rule_id(synthesized: Synthesized) -> str:
    return synthesized.logical_id(synthesized.stack.promoter.rule)


def test_a_failed_tracker_run_is_not_retried(default: Synthesized) -> None:
    default.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"FunctionName": {"Ref": default.function_id("tracker")}, "MaximumRetryAttempts": 0},
    )


# --- IAM --------------------------------------------------------------------------------------------


def test_no_policy_anywhere_allows_a_wildcard_action(any_stack: Synthesized) -> None:
    documents = list(all_policy_documents(any_stack))
    assert len(documents) >= 6
    for document in documents:
        for statement in document["Statement"]:
            assert "NotAction" not in statement
            if statement["Effect"] == "Deny":
                # enforce_ssl on the queue and the topic: deny everything that is not TLS, which is how
                # such a guard must be written (a list of actions would leave the others open).
                assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, statement
                continue
            for action in as_list(statement["Action"]):
                assert "*" not in action, statement


def test_wildcard_resources_only_where_aws_offers_nothing_narrower(
    default: Synthesized, variant: Synthesized, without_argocd: Synthesized
) -> None:
    for synthesized, allowed in (
        (default, WILDCARD_RESOURCE_ACTIONS),
        (variant, WILDCARD_RESOURCE_ACTIONS_IN_VPC),
        (without_argocd, WILDCARD_RESOURCE_ACTIONS),
    ):
        for service in ("promoter", "tracker"):
            for statement in synthesized.statements_of(service):
                resources = [render_reference(r) for r in as_list(statement["Resource"])]
                if resources == ["*"]:
                    assert set(as_list(statement["Action"])) <= allowed, statement
                elif any("*" in r for r in resources):
                    # Only a KMS alias: any key of the account, narrowed to the alias's key by a condition.
                    assert statement["Action"] == "kms:GetPublicKey"
                    assert statement["Condition"] == {
                        "ForAnyValue:StringEquals": {"kms:ResourceAliases": [SIGNING_KEY_ALIAS]}
                    }


def test_ecr_reads_are_scoped_to_the_configured_repositories(any_stack: Synthesized) -> None:
    ecr = [s for s in any_stack.statements_of("promoter") if any(a.startswith("ecr:") for a in as_list(s["Action"]))]
    assert {"Action": "ecr:GetAuthorizationToken", "Effect": "Allow", "Resource": "*"} in ecr
    reads = [s for s in ecr if s["Action"] != "ecr:GetAuthorizationToken"]
    assert len(reads) == 1
    assert sorted(reads[0]["Action"]) == [
        "ecr:BatchGetImage",
        "ecr:DescribeImages",
        "ecr:DescribeRepositories",  # tag mutability: on the configured repositories only
        "ecr:GetDownloadUrlForLayer",
    ]
    assert reads[0]["Resource"] == REPOSITORY_ARNS
    assert not any(a.startswith("ecr:") for s in any_stack.statements_of("tracker") for a in as_list(s["Action"]))


def test_dynamodb_access_is_scoped_to_the_table_and_its_indexes(any_stack: Synthesized) -> None:
    # By name, not by reference: the table is created last (infra/ledger_table.py).
    account = render_reference(any_stack.stack.resolve(any_stack.stack.account))
    table = f"arn:aws:dynamodb:{any_stack.stack.region}:{account}:table/{any_stack.config.ledger.table}"
    expected = [table, f"{table}/index/by-sha", f"{table}/index/in-flight", f"{table}/index/undecided"]
    for service in ("promoter", "tracker", "reconciler"):
        dynamodb = [
            s for s in any_stack.statements_of(service) if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))
        ]
        assert len(dynamodb) == 1
        assert sorted(dynamodb[0]["Action"]) == sorted(LEDGER_ACTIONS)
        assert [render_reference(r) for r in dynamodb[0]["Resource"]] == expected


def secret_resources(synthesized: Synthesized, service: str) -> list[str]:
    return [
        render_reference(resource)
        for s in synthesized.statements_of(service)
        if any(a.startswith("secretsmanager:") for a in as_list(s["Action"]))
        for resource in as_list(s["Resource"])
        if s["Action"] == "secretsmanager:GetSecretValue"
    ]


def test_secrets_are_read_by_arn_only(default: Synthesized, variant: Synthesized, without_argocd: Synthesized) -> None:
    by_name = "arn:aws:secretsmanager:us-east-1:<AWS::AccountId>:secret:"
    assert secret_resources(default, "promoter") == [
        f"{by_name}tagrelay/argocd-token-??????",
        f"{by_name}tagrelay/github-token-??????",
    ]
    # The tracker reads GitHub's credentials too: it asks GitHub whether a later revision contains ours.
    assert secret_resources(default, "tracker") == [
        f"{by_name}tagrelay/argocd-token-??????",
        f"{by_name}tagrelay/github-token-??????",
    ]
    # A complete ARN is used as is; without refresh_after_commit the promoter never needs Argo CD's token.
    assert secret_resources(variant, "promoter") == [GITHUB_APP_KEY_ARN]
    assert secret_resources(variant, "tracker") == sorted(
        ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:tagrelay/argocd-token-??????", GITHUB_APP_KEY_ARN]
    )
    assert secret_resources(without_argocd, "tracker") == []
    # Referenced, never created.
    for synthesized in (default, variant, without_argocd):
        assert synthesized.of_type("AWS::SecretsManager::Secret") == {}


def test_signing_keys_allow_get_public_key_only(
    default: Synthesized, variant: Synthesized, without_argocd: Synthesized
) -> None:
    def kms(synthesized: Synthesized) -> list[dict[str, Any]]:
        return [s for s in synthesized.statements_of("promoter") if str(s["Action"]).startswith("kms:")]

    assert kms(default) == []  # the example signs keyless: no KMS key to read
    assert [(s["Action"], render_reference(s["Resource"])) for s in kms(without_argocd)] == [
        ("kms:GetPublicKey", "arn:aws:kms:us-east-1:<AWS::AccountId>:key/*")
    ]
    assert kms(variant) == [
        {"Action": "kms:GetPublicKey", "Effect": "Allow", "Resource": SIGNING_KEY_ARN, "Sid": "SigningKeys"}
    ]
    assert not any(str(s["Action"]).startswith("kms:") for s in default.statements_of("tracker"))


def test_operators_may_invoke_the_promoter_when_configured(default: Synthesized, variant: Synthesized) -> None:
    def invokers(synthesized: Synthesized) -> list[Any]:
        return [p["Properties"]["Principal"] for p in synthesized.of_type("AWS::Lambda::Permission").values()]

    schedules_and_push_rule = ["events.amazonaws.com"] * 3  # tracker, reconciler, the ECR rule
    assert invokers(default) == schedules_and_push_rule
    assert sorted(invokers(variant)) == [OPERATOR_ROLE, *schedules_and_push_rule]
    variant.template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "Principal": OPERATOR_ROLE,
            "FunctionName": {"Fn::GetAtt": [variant.function_id("promoter"), "Arn"]},
        },
    )


def test_no_aws_managed_policies(any_stack: Synthesized) -> None:
    for role in any_stack.of_type("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


# --- table ----------------------------------------------------------------------------------------


def test_ledger_table_has_the_ledger_keys_indexes_ttl_and_protection(default: Synthesized) -> None:
    expected: dict[str, Any] = ledger_schema.table_definition("tagrelay-ledger")
    table = default.resources[default.logical_id(default.stack.ledger.table)]
    assert table["Type"] == "AWS::DynamoDB::GlobalTable"
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    properties = table["Properties"]
    assert properties["TableName"] == "tagrelay-ledger"
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == expected["KeySchema"]
    assert sorted(properties["AttributeDefinitions"], key=str) == sorted(expected["AttributeDefinitions"], key=str)
    assert sorted(properties["GlobalSecondaryIndexes"], key=str) == sorted(expected["GlobalSecondaryIndexes"], key=str)
    assert properties["TimeToLiveSpecification"] == {"AttributeName": ledger_schema.TTL_ATTRIBUTE, "Enabled": True}
    [replica] = properties["Replicas"]
    assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert replica["DeletionProtectionEnabled"] is True


# --- functions ------------------------------------------------------------------------------------


def test_functions_run_the_bundled_code_with_the_bundled_configuration(any_stack: Synthesized) -> None:
    table = any_stack.stack.ledger
    for service in ("promoter", "tracker"):
        function = any_stack.resources[any_stack.function_id(service)]["Properties"]
        assert function["Handler"] == f"tagrelay.handlers.{service}.handler"
        assert function["Runtime"] == "python3.13"
        assert function["Architectures"] == [any_stack.config.deploy.architecture]
        assert function["TracingConfig"] == {"Mode": "Active"}
        assert function["FunctionName"] == f"{any_stack.stack.stack_name}-{service}"
        variables = function["Environment"]["Variables"]
        assert variables["TAGRELAY_CONFIG"] == "/var/task/tagrelay.yaml"
        assert variables["POWERTOOLS_SERVICE_NAME"] == service
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "tagrelay"
        assert variables["TAGRELAY_LEDGER_TABLE"] == table.table_name == any_stack.config.ledger.table


def test_each_function_logs_to_its_own_group_with_the_configured_retention(
    default: Synthesized, variant: Synthesized
) -> None:
    for synthesized, days in ((default, 90), (variant, 30)):
        groups = {
            group["Properties"]["LogGroupName"]: (logical_id, group["Properties"])
            for logical_id, group in synthesized.of_type("AWS::Logs::LogGroup").items()
        }
        name = synthesized.stack.stack_name
        services = ("promoter", "reconciler", "tracker")
        assert sorted(groups) == [f"/aws/lambda/{name}-{service}" for service in services]
        for service in services:
            group_id, group = groups[f"/aws/lambda/{name}-{service}"]
            assert group["RetentionInDays"] == days
            function = synthesized.resources[synthesized.function_id(service)]["Properties"]
            assert function["LoggingConfig"]["LogGroup"] == {"Ref": group_id}
            # The role may write to its own log group only (no AWSLambdaBasicExecutionRole).
            assert {
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": [group_id, "Arn"]},
            } in synthesized.statements_of(service)


def test_retention_periods_are_the_ones_cloudwatch_accepts() -> None:
    stack = cdk.Stack(cdk.App())
    for days, retention in RETENTION_PERIODS.items():
        logs.LogGroup(stack, f"Group{days}", retention=retention)
    rendered = sorted(
        group["Properties"]["RetentionInDays"]
        for group in Template.from_stack(stack).find_resources("AWS::Logs::LogGroup").values()
    )
    assert rendered == sorted(RETENTION_PERIODS)
    with pytest.raises(ValueError, match=r"deploy\.log_retention_days: 100 is not"):
        retention_days(100)


# --- VPC ------------------------------------------------------------------------------------------


def test_tracker_is_outside_any_vpc_by_default(default: Synthesized) -> None:
    for service in ("promoter", "tracker"):
        assert "VpcConfig" not in default.resources[default.function_id(service)]["Properties"]
        assert not any(a.startswith("ec2:") for s in default.statements_of(service) for a in as_list(s["Action"]))


def test_tracker_runs_in_the_configured_subnets_when_asked(variant: Synthesized) -> None:
    tracker = variant.resources[variant.function_id("tracker")]
    assert tracker["Properties"]["VpcConfig"] == {
        "SubnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
        "SecurityGroupIds": ["sg-0ccccccccccccccc3"],
    }
    eni = [s for s in variant.statements_of("tracker") if "ec2:CreateNetworkInterface" in as_list(s["Action"])]
    assert len(eni) == 1
    assert sorted(eni[0]["Action"]) == sorted(VPC_ENI_ACTIONS)
    # Lambda checks the ENI permissions when it creates the function: the policy must exist first.
    eni_policy = variant.logical_id(variant.stack.tracker.pipeline_function.node.find_child("VpcNetworkInterfaces"))
    assert eni_policy in tracker["DependsOn"]
    assert "VpcConfig" not in variant.resources[variant.function_id("promoter")]["Properties"]
    assert not any(a.startswith("ec2:") for s in variant.statements_of("promoter") for a in as_list(s["Action"]))
    # Imported by id: no security group or VPC is created.
    assert variant.of_type("AWS::EC2::SecurityGroup") == {}
    assert variant.of_type("AWS::EC2::VPC") == {}


# --- alarms, topic, dashboard ---------------------------------------------------------------------


def alarm(synthesized: Synthesized, name: str) -> dict[str, Any]:
    matching: list[dict[str, Any]] = [
        a["Properties"]
        for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == f"{synthesized.stack.stack_name}-{name}"
    ]
    [found] = matching
    topic = synthesized.logical_id(synthesized.stack.alarms.topic)
    assert found["AlarmActions"] == [{"Ref": topic}]
    assert found["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert found["Threshold"] == 1
    assert found["EvaluationPeriods"] == found["DatapointsToAlarm"]
    assert found["TreatMissingData"] == "notBreaching"
    # Five minutes, except the sweep's: over its own schedule (a shorter period would be empty between runs).
    sweep = synthesized.config.reconcile.schedule_minutes * 60
    assert found["Period"] == (sweep if name in ("ReconcilerErrors", "ReleasesStuckWaiting") else 300)
    return found


def dimensions(found: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in found["Dimensions"]}


def test_alarms_cover_dead_letters_errors_rejections_failed_deployments_and_blocked_tracking(
    default: Synthesized,
) -> None:
    alarms = default.of_type("AWS::CloudWatch::Alarm")
    assert len(alarms) == 13
    archived = alarm(default, "DeployedImageArchived")
    assert (archived["Namespace"], archived["MetricName"], archived["Statistic"]) == (
        "tagrelay",
        "DecisionReasons",
        "Sum",
    )
    assert dimensions(archived) == {"decision": "alert", "reason": "image_archived", "service": "promoter"}

    dead_letters = alarm(default, "DeadLetterQueueNotEmpty")
    assert (dead_letters["Namespace"], dead_letters["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    queue = default.logical_id(default.stack.promoter.dead_letter_queue)
    assert dimensions(dead_letters) == {"QueueName": {"Fn::GetAtt": [queue, "QueueName"]}}

    for service in ("promoter", "tracker"):
        errors = alarm(default, f"{service.capitalize()}Errors")
        assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
        assert dimensions(errors) == {"FunctionName": {"Ref": default.function_id(service)}}

    rejected = alarm(default, "PromotionsRejected")
    assert (rejected["Namespace"], rejected["MetricName"], rejected["Statistic"]) == ("tagrelay", "Decisions", "Sum")
    assert dimensions(rejected) == {"decision": "reject", "service": "promoter"}

    moved = alarm(default, "ReleaseTagMoved")
    assert (moved["Namespace"], moved["MetricName"], moved["Statistic"]) == ("tagrelay", "DecisionReasons", "Sum")
    assert dimensions(moved) == {"decision": "reject", "reason": "tag_moved", "service": "promoter"}

    for outcome, name in (("DEGRADED", "Degraded"), ("SYNC_FAILED", "SyncFailed"), ("TIMED_OUT", "TimedOut")):
        failed = alarm(default, f"Deployments{name}")
        assert (failed["Namespace"], failed["MetricName"], failed["Statistic"]) == (
            "tagrelay",
            "DeploymentOutcomes",
            "Sum",
        )
        assert dimensions(failed) == {"outcome": outcome, "service": "tracker"}

    for cause, name in (
        ("permission_denied", "TrackingPermissionDenied"),
        ("unreachable_past_timeout", "TrackingBlockedArgoCdUnreachable"),
    ):
        blocked = alarm(default, name)
        assert (blocked["Namespace"], blocked["MetricName"], blocked["Statistic"]) == (
            "tagrelay",
            "TrackingBlocked",
            "Maximum",
        )
        assert dimensions(blocked) == {"cause": cause, "service": "tracker"}
        assert (blocked["Threshold"], blocked["EvaluationPeriods"]) == (1, 1)


@pytest.mark.parametrize("emitted_in", ["promoter", "reconciler"])
@pytest.mark.parametrize(
    ("name", "metric", "verdict", "reason"),
    [
        ("DeployedImageArchived", "DecisionReasons", "alert", "image_archived"),
        ("ReleaseTagMoved", "DecisionReasons", "reject", "tag_moved"),
        ("PromotionsRejected", "Decisions", "reject", "signature_missing"),
    ],
)
def test_what_the_promoter_and_the_sweep_find_reaches_its_alarm(
    default: Synthesized,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    emitted_in: str,
    name: str,
    metric: str,
    verdict: str,
    reason: str,
) -> None:
    """An archived deployed image, a moved release tag, an overdue unsigned release: found by an event
    (the promoter) or by the sweep (the reconciler, in its own function's environment), the metric each
    emits is the one its alarm selects."""
    from datetime import UTC, datetime

    from tagrelay.domain.decision import EnvDecision, Evaluation, Reason, Verdict
    from tagrelay.services import reconcile
    from tagrelay.services.observe import emit_decision_metrics

    environment = default.resources[default.function_id(emitted_in)]["Properties"]["Environment"]["Variables"]
    for variable in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.setenv(variable, environment[variable])
    evaluation = Evaluation(event_id=None, decisions=[EnvDecision("prod", Verdict(verdict), Reason(reason), "found")])
    capsys.readouterr()
    if emitted_in == "reconciler":
        run = reconcile.SweepRun("run", datetime.now(UTC), "2026-12-04", evaluations=[evaluation])
        reconcile.emit_reconcile_metrics(run)
    else:
        emit_decision_metrics([evaluation])
    emitted = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    [emf] = [e for e in emitted if metric in e]
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    [dimension_set] = directive["Dimensions"]
    found = alarm(default, name)
    assert (directive["Namespace"], directive["Metrics"][0]["Name"]) == (found["Namespace"], found["MetricName"])
    assert {dimension: emf[dimension] for dimension in dimension_set} == dimensions(found)


@pytest.mark.parametrize(
    "emitted_by",
    [
        ("promoter", "Decisions", "decision", "reject"),
        ("tracker", "DeploymentOutcomes", "outcome", "TIMED_OUT"),
        ("tracker", "TrackingBlocked", "cause", "permission_denied"),
        ("tracker", "TrackingBlocked", "cause", "unreachable_past_timeout"),
    ],
    ids=["promoter", "tracker", "tracker-permission", "tracker-unreachable"],
)
def test_alarm_dimensions_are_exactly_what_powertools_emits_with_the_stacks_environment(
    default: Synthesized,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    emitted_by: tuple[str, str, str, str],
) -> None:
    service, metric, dimension, value = emitted_by
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    environment = default.resources[default.function_id(service)]["Properties"]["Environment"]["Variables"]
    for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.setenv(name, environment[name])
    with single_metric(name=metric, unit=MetricUnit.Count, value=1) as emitted:
        emitted.add_dimension(name=dimension, value=value)
    emf = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    [dimension_set] = directive["Dimensions"]

    [found] = [
        a["Properties"]
        for a in default.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == metric and dimensions(a["Properties"]).get(dimension) == value
    ]
    assert directive["Namespace"] == found["Namespace"]
    assert {name: emf[name] for name in dimension_set} == dimensions(found)


def test_the_stuck_release_alarm_selects_exactly_what_the_sweep_emits(
    default: Synthesized, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    from tagrelay.services import reconcile

    environment = default.resources[default.function_id("reconciler")]["Properties"]["Environment"]["Variables"]
    for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.setenv(name, environment[name])
    stuck = reconcile.ReleaseOutcome("mosaic-life", "1e07581", "wait", "release_incomplete", "m", "2026-12-05", 45)
    run = reconcile.SweepRun("run", datetime.now(UTC), "2026-12-04", stuck=[stuck])
    capsys.readouterr()
    reconcile.emit_reconcile_metrics(run)
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    [dimension_set] = directive["Dimensions"]

    found = alarm(default, "ReleasesStuckWaiting")
    assert (directive["Namespace"], directive["Metrics"][0]["Name"]) == (found["Namespace"], found["MetricName"])
    assert {name: emf[name] for name in dimension_set} == dimensions(found)
    assert emf[found["MetricName"]] == [1.0]
    assert (reconcile.RELEASES_STUCK_METRIC, reconcile.EXTERNAL_CHANGES_METRIC, reconcile.STATES_HEALED_METRIC) == (
        pipeline_metrics.RELEASES_STUCK_METRIC,
        pipeline_metrics.EXTERNAL_CHANGES_METRIC,
        pipeline_metrics.STATES_HEALED_METRIC,
    )
    assert reconcile.SERVICE == pipeline_metrics.RECONCILER_SERVICE


def test_metric_vocabulary_matches_the_domain() -> None:
    from tagrelay.domain.decision import Verdict
    from tagrelay.domain.outcome import TERMINAL_STATES, DeploymentState

    assert set(pipeline_metrics.DECISIONS) == {verdict.value for verdict in Verdict}
    assert set(pipeline_metrics.OUTCOMES) == {state.value for state in TERMINAL_STATES}
    assert set(pipeline_metrics.FAILED_OUTCOMES) == {state.value for state in DeploymentState if state.is_failure}


def test_blocked_tracking_vocabulary_matches_the_tracker() -> None:
    from tagrelay.services import track

    assert (pipeline_metrics.BLOCKED_METRIC, pipeline_metrics.CAUSE_DIMENSION) == (
        track.BLOCKED_METRIC,
        track.CAUSE_DIMENSION,
    )
    assert set(pipeline_metrics.BLOCKED_CAUSES) == {track.PERMISSION_DENIED_CAUSE, track.UNREACHABLE_PAST_TIMEOUT_CAUSE}


def test_alarm_topic_requires_tls_and_lets_cloudwatch_publish(default: Synthesized, variant: Synthesized) -> None:
    topic = default.logical_id(default.stack.alarms.topic)
    [policy] = default.of_type("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    assert {
        "Action": "sns:Publish",
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Resource": {"Ref": topic},
        "Sid": "CloudWatchAlarmsPublish",
    } in statements
    assert default.of_type("AWS::SNS::Subscription") == {}
    variant.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "platform@example.com"}
    )


def test_dashboard_shows_every_decision_and_outcome(default: Synthesized) -> None:
    [dashboard] = default.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.loads(render_reference(dashboard["Properties"]["DashboardBody"]))
    metrics = [m for widget in body["widgets"] for m in widget.get("properties", {}).get("metrics", [])]
    decisions = {m[m.index("decision") + 1] for m in metrics if "Decisions" in m}
    outcomes = {m[m.index("outcome") + 1] for m in metrics if "DeploymentOutcomes" in m}
    assert decisions == set(pipeline_metrics.DECISIONS)
    assert outcomes == set(pipeline_metrics.OUTCOMES)
    assert {"LeadTimeSeconds", "TimeToSyncSeconds"} <= {name for m in metrics for name in m if isinstance(name, str)}


# --- configuration checks -------------------------------------------------------------------------


def test_repositories_in_another_account_or_region_are_flagged(default: Synthesized, variant: Synthesized) -> None:
    assert not [w for w in default.warnings if "will not reach" in w]
    flagged = [w for w in variant.warnings if "will not reach" in w]
    assert any("region us-east-1" in w for w in flagged)
    assert any("account 033691785857" in w for w in flagged)


def test_local_files_named_by_the_configuration_must_be_packageable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def with_key_file(path: str) -> Any:
        def change(data: dict[str, Any]) -> None:
            data["apps"]["mosaic-life"]["signature"] = {"key": {"public_key_file": path}}

        return change

    monkeypatch.chdir(tmp_path)  # the functions resolve such paths against their working directory
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "cosign.pub").write_text("-----BEGIN PUBLIC KEY-----\n", encoding="utf-8")
    config_file = write_config(tmp_path, with_key_file("keys/cosign.pub"))
    inputs = bundle_inputs(load_config(config_file), config_file, "3.13")
    assert inputs.referenced_files == ("keys/cosign.pub",)
    before = inputs.digest()
    (tmp_path / "keys" / "cosign.pub").write_text("-----BEGIN PUBLIC KEY-----\nchanged\n", encoding="utf-8")
    assert inputs.digest() != before  # a new key means a new bundle

    for path, problem in (("/etc/cosign.pub", "cannot be packaged"), ("keys/missing.pub", "does not exist")):
        config_file = write_config(tmp_path, with_key_file(path))
        with pytest.raises(BundlingError, match=problem):
            bundle_inputs(load_config(config_file), config_file, "3.13")


def test_the_asset_gets_runtime_dependencies_only(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    export_runtime_requirements(requirements)
    pinned = {
        line.split("==")[0].lower()
        for line in requirements.read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    }
    assert {"aws-lambda-powertools", "boto3", "pygithub", "ruamel-yaml", "sigstore", "pydantic"} <= pinned
    for excluded in ("aws-cdk-lib", "constructs", "cdk-nag", "jsii", "pytest", "moto", "hypothesis", "mypy", "ruff"):
        assert excluded not in pinned
    assert "--hash=sha256:" in requirements.read_text(encoding="utf-8")


# --- cdk-nag --------------------------------------------------------------------------------------


def test_cdk_nag_passes_with_reviewed_acknowledgements_only(default: Synthesized, variant: Synthesized) -> None:
    # The fixtures synthesized with the AwsSolutions plugin on: any unacknowledged finding would have raised.
    for synthesized in (default, variant):
        report = Path(synthesized.stack.node.root.outdir) / "validation-report.json"  # type: ignore[attr-defined]
        findings = [
            (plugin["pluginName"], violation["severity"])
            for plugin in json.loads(report.read_text(encoding="utf-8"))["pluginReports"]
            for violation in plugin["violations"]
        ]
        # Only this stack's own warnings (repositories in another account/region) may remain.
        assert set(findings) <= {("Construct Annotations", "warning")}
    assert not [w for w in default.warnings if "will not reach" in w]


@pytest.mark.parametrize(
    ("add_unreviewed", "finding"),
    [
        (lambda stack: sqs.Queue(stack, "Unreviewed"), "AwsSolutions-SQS3"),
        (
            lambda stack: iam.Policy(
                stack,
                "Unreviewed",
                statements=[iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"])],
                roles=[stack.tracker.pipeline_function.role],
            ),
            "AwsSolutions-IAM5[Resource::*]",
        ),
    ],
    ids=["queue-without-dlq", "wildcard-resource-outside-acknowledged-policies"],
)
def test_an_unacknowledged_finding_fails_synth(tmp_path: Path, add_unreviewed: Any, finding: str) -> None:
    app, stack = build_app(EXAMPLE, outdir=str(tmp_path), context=SKIP_BUNDLING)
    add_unreviewed(stack)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text(encoding="utf-8"))
    violations = [
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    ]
    assert violations
    assert all(path.startswith(f"{stack.stack_name}/Unreviewed") for _, path in violations), violations
    assert finding in {rule for rule, _ in violations}
