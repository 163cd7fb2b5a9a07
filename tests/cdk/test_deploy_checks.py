"""Checks that stand in for a first `cdk deploy`: what only a deploy (or the first push) would otherwise find.

- cfn-lint on the synthesized templates: no error, only acknowledged warnings (`make synth` runs the
  same check, infra/template_lint.py);
- the EventBridge rule's pattern, as synthesized, evaluated by an EventBridge implementation (moto's,
  through the real EventBridge and SQS APIs: the rule delivers what it matches to a queue) against
  real-shaped ECR events of every kind: which reach the promoter, and what the promoter's intake makes
  of each;
- a failed first deploy can be retried: for every resource that could be the one that fails, nothing
  with a fixed name survives the rollback (CloudFormation's creation and rollback rules applied to the
  template);
- the alarms mean something: error alarms need several periods, and every description says what to do
  and links its runbook section.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from devstack.moto import LOCAL_AWS_ENV
from devstack.process import RunningServer
from infra.alarms import ERROR_PERIODS, MAX_DESCRIPTION
from infra.template_lint import ACKNOWLEDGED, lint_template
from tagrelay.config import load_config
from tagrelay.domain.events import (
    BranchTagPushed,
    Ignored,
    ReferrerPushed,
    ReleaseTagPushed,
    SignaturePushed,
    StorageClassChanged,
    classify,
)
from tests.cdk.support import EXAMPLE, REPO_ROOT, Synthesized, synthesize, write_config

pytestmark = pytest.mark.cdk

ACCOUNT, REGION = "033691785857", "us-east-1"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
ALARMS_DOC = REPO_ROOT / "docs" / "alarms.md"
RUNBOOK_URL = "https://github.com/acme/tagrelay/blob/main/docs/alarms.md"


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(EXAMPLE, tmp_path_factory.mktemp("default-out"))


@pytest.fixture(scope="module")
def everything_on(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Every optional deploy feature on: VPC, e-mail, operators, KMS key, another region, a runbook URL."""

    def change(data: dict[str, Any]) -> None:
        data["deploy"] = {
            "stack_name": "tagrelay-ops",
            "account": "111122223333",
            "region": "eu-west-1",
            "alarm_email": "platform@example.com",
            "runbook_url": RUNBOOK_URL,
            "tracker_vpc": {
                "subnet_ids": ["subnet-0aaaaaaaaaaaaaaa1"],
                "security_group_ids": ["sg-0ccccccccccccccc3"],
            },
            "promoter_vpc": {
                "subnet_ids": ["subnet-0ddddddddddddddd4"],
                "security_group_ids": ["sg-0eeeeeeeeeeeeeee5"],
            },
            "operators_role_arns": ["arn:aws:iam::111122223333:role/platform-oncall"],
        }
        data["apps"]["mosaic-life"]["signature"] = {"key": {"kms_key_id": "alias/mosaic-life-cosign"}}

    folder = tmp_path_factory.mktemp("everything-on")
    return synthesize(write_config(folder, change), folder / "out")


def template_of(synthesized: Synthesized) -> dict[str, Any]:
    return {"Resources": synthesized.resources, **synthesized.template.to_json()}


# --- cfn-lint -------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["default", "everything_on"])
def test_cfn_lint_finds_no_error_and_only_acknowledged_warnings(which: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(which)
    region = synthesized.config.deploy.region or REGION
    findings = lint_template(template_of(synthesized), region)
    assert [str(f) for f in findings if f.blocking] == []
    assert all(f.rule in ACKNOWLEDGED for f in findings if f.severity == "warning")
    assert all(len(reason) > 40 for reason in ACKNOWLEDGED.values()), "each acknowledgement says why"


def test_cfn_lint_reports_what_a_deploy_would_refuse(default: Synthesized) -> None:
    broken = copy.deepcopy(template_of(default))
    function = broken["Resources"][default.function_id("promoter")]["Properties"]
    function["Runtime"] = "python2.7"  # deprecated: Lambda refuses to create it
    function["Timeout"] = 5000  # seconds: above Lambda's 900
    rules = {f.rule for f in lint_template(broken) if f.blocking}
    assert rules >= {"E2533", "E3717"}, rules


# --- which ECR events reach the promoter ------------------------------------------------------------


@dataclass(frozen=True)
class EcrEvent:
    """One kind of real-shaped ECR event, whether the rule must deliver it, and why."""

    kind: str
    detail_type: str
    detail: dict[str, Any]
    delivered: bool
    why: str
    resources: tuple[str, ...] = ()


def digest() -> str:
    return "sha256:" + uuid.uuid4().hex * 2


def image_action(repository: str = "mosaic-life/web", **detail: Any) -> dict[str, Any]:
    """The detail of ECR's `ECR Image Action` push sample, with the schema's media types."""
    return {
        "result": "SUCCESS",
        "repository-name": repository,
        "image-digest": digest(),
        "action-type": "PUSH",
        "artifact-media-type": OCI_CONFIG,
        "manifest-media-type": OCI_MANIFEST,
        **detail,
    }


SIGNED = "sha256:" + "9a" * 32
REPOSITORY_ARN = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/mosaic-life/web"
EVENTS = [
    EcrEvent("release tag push", "ECR Image Action", image_action(**{"image-tag": "1e07581"}), True,
             "a release tag: evaluates the release"),
    EcrEvent("branch tag push", "ECR Image Action", image_action(**{"image-tag": "main"}), True,
             "the branch tag says which environment; it may arrive last"),
    EcrEvent("other tag push (latest)", "ECR Image Action", image_action(**{"image-tag": "latest"}), True,
             "the rule does not filter tags; the promoter ignores tags outside its grammar (tag_outside_grammar)"),
    EcrEvent("untagged child manifest of a multi-arch push", "ECR Image Action", image_action(), True,
             "pushed by digest; the promoter ignores it (untagged_push)"),
    EcrEvent("cosign .sig push", "ECR Image Action",
             image_action(**{"image-tag": SIGNED.replace(":", "-") + ".sig"}), True,
             "a legacy signature: the last signature pushed completes a release"),
    EcrEvent("cosign v3 bundle referrer push", "ECR Image Action",
             image_action(**{"artifact-media-type": BUNDLE_TYPE}), True,
             "a Sigstore bundle pushed by digest as an OCI 1.1 referrer: resolved to its subject"),
    EcrEvent("bundle push announced as a referrer action", "ECR Referrer Action",
             image_action(**{"artifact-media-type": BUNDLE_TYPE}), True,
             "the referrer schema has the image action's fields; should ECR announce a referrer push this "
             "way, it is a signature push like any other"),
    EcrEvent("image delete", "ECR Image Action", image_action(**{"action-type": "DELETE", "image-tag": "1e07581"}),
             False, "a delete never promotes"),
    EcrEvent("failed push", "ECR Image Action", image_action(**{"result": "FAILED", "image-tag": "1e07581"}),
             False, "only a completed push carries an image"),
    EcrEvent("push to another repository", "ECR Image Action",
             image_action("mosaic-life/docs", **{"image-tag": "1e07581"}), False, "not an image of any app"),
    EcrEvent("archive", "ECR Image Action",
             image_action(**{"action-type": "UPDATE_STORAGE_CLASS", "target-storage-class": "ARCHIVE"}), True,
             "an archived image cannot be pulled: the promoter alerts when an environment runs it"),
    EcrEvent("restore", "ECR Image Action",
             image_action(**{"action-type": "UPDATE_STORAGE_CLASS", "target-storage-class": "STANDARD",
                             "last-activated-at": "2026-11-26T10:00:00.00Z"}), True,
             "matched with the archives (one action type); the promoter ignores it (image_restored)"),
    EcrEvent("referrer restore (AWS's Referrer Action sample)", "ECR Referrer Action",
             image_action(**{"action-type": "UPDATE_STORAGE_CLASS", "target-storage-class": "STANDARD",
                             "artifact-media-type": "text/sbom+json",
                             "manifest-media-type": "application/vnd.cncf.oras.artifact.manifest.v1+json",
                             "last-activated-at": "2026-11-26T10:00:00.00Z"}), True,
             "matched with the image actions (same fields); the promoter ignores it (referrer_storage_class)"),
    EcrEvent("artifact action (no published sample or schema)", "ECR Artifact Action",
             image_action(**{"image-tag": "1e07581"}), False,
             "AWS documents neither its fields nor when it is sent; not matched (docs/deploy.md)"),
    EcrEvent("basic scan finished", "ECR Image Scan",
             {"scan-status": "COMPLETE", "repository-name": "mosaic-life/web", "image-digest": digest(),
              "image-tags": ["1e07581"], "finding-severity-counts": {}}, False,
             "a scan changes nothing tagrelay checks", (REPOSITORY_ARN,)),
    EcrEvent("replication into this registry", "ECR Replication Action",
             {"result": "SUCCESS", "repository-name": "mosaic-life/web", "image-digest": digest(),
              "source-account": ACCOUNT, "action-type": "REPLICATE", "source-region": "us-west-2",
              "image-tag": "1e07581"}, False,
             "pushes are evaluated in the registry CI pushes to (apps.*.registry)", (REPOSITORY_ARN,)),
]  # fmt: skip


@pytest.fixture(scope="module")
def eventbridge(moto_server: RunningServer, default: Synthesized) -> Iterator[tuple[Any, Any, str]]:
    """moto's EventBridge with the synthesized rule, delivering what it matches to an SQS queue."""
    session = boto3.Session(
        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    events = session.client("events", endpoint_url=moto_server.url)
    sqs = session.client("sqs", endpoint_url=moto_server.url)
    queue_url = sqs.create_queue(QueueName="promoter-stand-in")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = default.resources[default.logical_id(default.stack.promoter.rule)]["Properties"]
    events.put_rule(Name="ecr-push", EventPattern=json.dumps(rule["EventPattern"]), State="ENABLED")
    events.put_targets(Rule="ecr-push", Targets=[{"Id": "promoter", "Arn": queue_arn}])
    yield events, sqs, queue_url
    events.remove_targets(Rule="ecr-push", Ids=["promoter"])
    events.delete_rule(Name="ecr-push")
    sqs.delete_queue(QueueUrl=queue_url)


def delivered_details(eventbridge: tuple[Any, Any, str]) -> list[tuple[str, dict[str, Any]]]:
    events, sqs, queue_url = eventbridge
    entries = [
        {
            "Source": "aws.ecr",
            "DetailType": e.detail_type,
            "Detail": json.dumps(e.detail),
            "Resources": list(e.resources),
        }
        for e in EVENTS
    ]
    for start in range(0, len(entries), 10):  # PutEvents takes at most 10 entries
        response = events.put_events(Entries=entries[start : start + 10])
        assert response["FailedEntryCount"] == 0, response
    received: list[tuple[str, dict[str, Any]]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        if not messages.get("Messages"):
            return received
        for message in messages["Messages"]:
            event = json.loads(message["Body"])
            received.append((event["detail-type"], event["detail"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_the_rule_delivers_exactly_the_pushes_the_promoter_needs(eventbridge: tuple[Any, Any, str]) -> None:
    assert len({e.kind for e in EVENTS}) >= 8
    received = delivered_details(eventbridge)
    outcome = {e.kind: (e.detail_type, e.detail) in received for e in EVENTS}
    assert outcome == {e.kind: e.delivered for e in EVENTS}, [e.why for e in EVENTS if outcome[e.kind] != e.delivered]
    assert len(received) == sum(e.delivered for e in EVENTS), "each matching event is delivered once"


@pytest.mark.parametrize(
    ("kind", "intake"),
    [
        ("release tag push", ReleaseTagPushed),
        ("branch tag push", BranchTagPushed),
        ("other tag push (latest)", Ignored),
        ("untagged child manifest of a multi-arch push", Ignored),
        ("cosign .sig push", SignaturePushed),
        ("cosign v3 bundle referrer push", ReferrerPushed),
        ("bundle push announced as a referrer action", ReferrerPushed),
        ("archive", StorageClassChanged),
        ("restore", StorageClassChanged),
        ("referrer restore (AWS's Referrer Action sample)", Ignored),
    ],
)
def test_the_promoter_takes_every_delivered_event_as_intended(kind: str, intake: type) -> None:
    [event] = [e for e in EVENTS if e.kind == kind]
    envelope = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": event.detail_type,
        "source": "aws.ecr",
        "account": ACCOUNT,
        "time": "2026-11-26T10:00:00Z",
        "region": REGION,
        "resources": list(event.resources),
        "detail": event.detail,
    }
    assert isinstance(classify(envelope, load_config(EXAMPLE)), intake)


# --- a failed first deploy can be retried --------------------------------------------------------------

# Deletion policies that leave the resource behind when the stack operation that created it rolls back.
_SURVIVES_ROLLBACK = {"Retain", "Snapshot"}


def references(value: Any) -> Iterator[str]:
    """Logical ids a property value refers to (Ref, Fn::GetAtt, ${...} in Fn::Sub)."""
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            yield value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            yield target[0] if isinstance(target, list) else str(target).split(".")[0]
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            yield from (name.split(".")[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text))
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def dependencies(resources: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """Each resource's transitive dependencies (DependsOn and references): what must exist before it."""
    direct = {
        name: {
            *([r["DependsOn"]] if isinstance(r.get("DependsOn"), str) else r.get("DependsOn", [])),
            *(ref for ref in references(r.get("Properties", {})) if ref in resources),
        }
        for name, r in resources.items()
    }
    closure: dict[str, set[str]] = {}

    def visit(name: str, path: tuple[str, ...]) -> set[str]:
        assert name not in path, f"dependency cycle: {' -> '.join((*path, name))}"
        if name not in closure:
            closure[name] = (
                set().union(*({d} | visit(d, (*path, name)) for d in direct[name])) if direct[name] else set()
            )
        return closure[name]

    for name in resources:
        visit(name, ())
    return closure


def fixed_name(resource: dict[str, Any]) -> str | None:
    """The physical name a template gives a resource (TableName, LogGroupName, FunctionName, ...)."""
    names = [v for k, v in resource.get("Properties", {}).items() if k.endswith("Name") and isinstance(v, str)]
    return names[0] if names else None


def left_behind_by_a_failed_first_deploy(resources: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """For each resource whose creation could fail: the named resources that may already exist then
    (everything that does not depend on it) and that the rollback keeps, so that the retry's create of
    the same name fails with "already exists"."""
    needs = dependencies(resources)
    left: dict[str, list[str]] = {}
    for failing in resources:
        maybe_created = [name for name in resources if name != failing and failing not in needs[name]]
        kept = [
            f"{name} ({fixed_name(resources[name])})"
            for name in maybe_created
            if resources[name].get("DeletionPolicy") in _SURVIVES_ROLLBACK and fixed_name(resources[name])
        ]
        if kept:
            left[failing] = kept
    return left


@pytest.mark.parametrize("which", ["default", "everything_on"])
def test_a_failed_first_deploy_leaves_nothing_that_blocks_the_retry(which: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(which)
    table = synthesized.resources[synthesized.logical_id(synthesized.stack.ledger.table)]
    # What is kept after the stack is deleted stays kept, and protected.
    assert table["DeletionPolicy"] == "Retain" and table["Properties"]["Replicas"][0]["DeletionProtectionEnabled"]
    assert left_behind_by_a_failed_first_deploy(synthesized.resources) == {}


def test_the_rollback_check_finds_a_named_retained_resource(default: Synthesized) -> None:
    """As the stack was before: log groups retained on every rollback, table not created last."""
    resources = copy.deepcopy(default.resources)
    for resource in resources.values():
        if resource["Type"] == "AWS::Logs::LogGroup":
            resource["DeletionPolicy"] = "Retain"
    table = default.logical_id(default.stack.ledger.table)
    resources[table].pop("DependsOn")
    left = left_behind_by_a_failed_first_deploy(resources)
    promoter = default.function_id("promoter")
    assert any("tagrelay-ledger" in kept for kept in left[promoter])
    assert any("/aws/lambda/tagrelay-promoter" in kept for kept in left[promoter])


# --- alarms ------------------------------------------------------------------------------------------------


def alarms_of(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"].removeprefix(f"{synthesized.stack.stack_name}-"): a["Properties"]
        for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()
    }


def runbook_sections() -> set[str]:
    """The anchors of docs/alarms.md's sections, as GitHub renders them."""
    headings = re.findall(r"^##+ (.+)$", ALARMS_DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-") for h in headings}


def test_function_errors_alarm_only_when_they_persist(default: Synthesized) -> None:
    alarms = alarms_of(default)
    for name in ("PromoterErrors", "TrackerErrors"):
        assert alarms[name]["MetricName"] == "Errors"
        assert alarms[name]["EvaluationPeriods"] == alarms[name]["DatapointsToAlarm"] == ERROR_PERIODS >= 3
    # The dead-letter queue and the outcomes someone expected otherwise alarm on the first occurrence.
    assert alarms["DeadLetterQueueNotEmpty"]["EvaluationPeriods"] == 1
    assert alarms["PromotionsRejected"]["EvaluationPeriods"] == 1


@pytest.mark.parametrize("which", ["default", "everything_on"])
def test_every_alarm_says_what_to_do_and_links_its_runbook_section(which: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(which)
    sections = runbook_sections()
    for name, properties in alarms_of(synthesized).items():
        description = properties["AlarmDescription"]
        assert len(description) <= MAX_DESCRIPTION
        assert "What to do: " in description, name
        assert name.lower() in sections, f"docs/alarms.md has no section {name}"
        if synthesized.config.deploy.runbook_url:
            assert description.endswith(f"Runbook: {RUNBOOK_URL}#{name.lower()}")
        else:
            assert f"docs/alarms.md in the tagrelay repository, section {name} (#{name.lower()})" in description


def test_the_runbook_describes_only_alarms_the_stack_has(default: Synthesized) -> None:
    alarms = {name.lower() for name in alarms_of(default)}
    text = ALARMS_DOC.read_text(encoding="utf-8")
    documented = {h.lower() for h in re.findall(r"^## (\w+)$", text, flags=re.MULTILINE)}
    assert documented == alarms


def test_a_runbook_url_must_be_a_url(tmp_path: Path) -> None:
    from tagrelay.config import ConfigError

    def change(data: dict[str, Any]) -> None:
        data["deploy"]["runbook_url"] = "docs/alarms.md"

    with pytest.raises(ConfigError, match=r"deploy.runbook_url: must be an http\(s\) URL"):
        load_config(write_config(tmp_path, change))


def test_synth_and_config_check_refuse_a_configuration_for_the_same_reasons(tmp_path: Path) -> None:
    """One list of deploy-time checks (tagrelay.deployment): `cdk synth` and `tagrelay config check`."""
    from infra.cdk_app import build_app
    from infra.pipeline_function import RETENTION_PERIODS
    from tagrelay.cli.config_check import check
    from tagrelay.config import ConfigError
    from tagrelay.deployment import LOG_RETENTION_DAYS

    assert sorted(RETENTION_PERIODS) == list(LOG_RETENTION_DAYS)

    def change(data: dict[str, Any]) -> None:
        data["deploy"]["log_retention_days"] = 100
        data["argocd"]["ca_bundle"] = "/etc/ssl/argocd.pem"

    config_file = write_config(tmp_path, change)
    errors = check(str(config_file))["errors"]
    assert len(errors) == 2
    with pytest.raises(ConfigError) as refused:
        build_app(config_file, outdir=str(tmp_path / "out"))
    assert all(error in str(refused.value) for error in errors)


# --- network placement of the refresh nudge ----------------------------------------------------------------


def test_the_promoter_runs_in_the_configured_subnets_to_reach_an_in_vpc_argo_cd(
    default: Synthesized, everything_on: Synthesized
) -> None:
    promoter = everything_on.resources[everything_on.function_id("promoter")]["Properties"]
    assert promoter["VpcConfig"] == {
        "SubnetIds": ["subnet-0ddddddddddddddd4"],
        "SecurityGroupIds": ["sg-0eeeeeeeeeeeeeee5"],
    }
    actions = {
        action
        for statement in everything_on.statements_of("promoter")
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert "ec2:CreateNetworkInterface" in actions  # Lambda manages the function's network interfaces
    assert "VpcConfig" not in default.resources[default.function_id("promoter")]["Properties"]


def test_a_nudge_that_cannot_reach_an_in_vpc_argo_cd_is_flagged_before_deploying(tmp_path: Path) -> None:
    from tagrelay.deployment import check_deployment

    vpc = {
        "subnet_ids": ["subnet-0aaaaaaaaaaaaaaa1"],
        "security_group_ids": ["sg-0ccccccccccccccc3"],
    }

    def tracker_only(data: dict[str, Any]) -> None:
        data["deploy"]["tracker_vpc"] = vpc

    [warning] = check_deployment(load_config(write_config(tmp_path, tracker_only))).warnings
    assert "deploy.promoter_vpc is not" in warning and "RefreshNudgeFailures" in warning

    def both(data: dict[str, Any]) -> None:
        data["deploy"]["tracker_vpc"] = data["deploy"]["promoter_vpc"] = vpc

    assert check_deployment(load_config(write_config(tmp_path, both))).warnings == []

    def no_nudge(data: dict[str, Any]) -> None:
        data["deploy"]["tracker_vpc"] = vpc
        data["argocd"]["refresh_after_commit"] = False

    assert check_deployment(load_config(write_config(tmp_path, no_nudge))).warnings == []


def test_the_runbook_states_the_retries_the_stack_configures(default: Synthesized) -> None:
    """docs/alarms.md once said "EventBridge retries for up to 6 hours" while the target allowed 10 attempts."""
    from infra.promoter import ASYNC_MAX_EVENT_AGE, ASYNC_RETRIES, EVENT_MAX_AGE, EVENT_RETRY_ATTEMPTS

    [target] = default.resources[default.logical_id(default.stack.promoter.rule)]["Properties"]["Targets"]
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": EVENT_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": int(EVENT_MAX_AGE.to_seconds()),
    }
    text = " ".join(ALARMS_DOC.read_text(encoding="utf-8").split())
    hours = int(EVENT_MAX_AGE.to_hours())
    assert (
        f"EventBridge retries a failed delivery up to {EVENT_RETRY_ATTEMPTS} times with backoff, for at most {hours}"
        in text
    )
    assert ASYNC_RETRIES == 2 and "Lambda retries a failed run twice" in text
    assert f"for at most {int(ASYNC_MAX_EVENT_AGE.to_hours())} hours" in text
