"""The promoter: ECR push events in (EventBridge), GitOps commits and ledger records out.

Failure handling, in the two places an event can be lost:

1. EventBridge -> Lambda delivery (the Invoke call itself is throttled or fails): the rule target retries
   with backoff for up to ``EVENT_MAX_AGE``, then sends the event to the dead-letter queue.
2. The function ran and raised (GitHub or the registry unavailable, a bug): Lambda's asynchronous
   invocation retries ``ASYNC_RETRIES`` times, then its on-failure destination sends an invocation record
   (the event, the error and the stack trace) to the same queue.

One queue for both means one alarm and one place to look; the two message shapes tell them apart
(EventBridge adds RULE_ARN/ERROR_CODE message attributes; Lambda's record has requestPayload and
responsePayload). Re-sending an event is always safe: promotion is level-triggered and idempotent.
An on-failure destination (not a function DLQ) is used because it carries the error, not only the event.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import access, nag, pipeline_metrics
from infra.ledger_table import LedgerTable
from infra.pipeline_function import PipelineFunction
from tagrelay.config import Config
from tagrelay.domain.events import ACTION_TYPES, ECR_SOURCE, PUSH_DETAIL_TYPES

EVENT_RETRY_ATTEMPTS = 10
EVENT_MAX_AGE = cdk.Duration.hours(6)
ASYNC_RETRIES = 2
ASYNC_MAX_EVENT_AGE = cdk.Duration.hours(6)
DEAD_LETTER_RETENTION = cdk.Duration.days(14)


def ecr_push_pattern(repository_names: list[str]) -> events.EventPattern:
    """Every successful push to a configured repository: image tags, branch tags, cosign `.sig` tags and
    cosign v3 bundles (untagged referrers), announced as an image action or as a referrer action; and
    every image of those repositories archived or restored (``UPDATE_STORAGE_CLASS``).

    Signature pushes must reach the promoter (the last signature uploaded is what completes a release),
    so the pattern does not filter on the tag; the promoter classifies tags itself. Which ECR events
    match and why: docs/deploy.md, "Which ECR events reach the promoter" (tested with an EventBridge
    implementation in tests/cdk/test_deploy_checks.py).
    """
    return events.EventPattern(
        source=[ECR_SOURCE],
        detail_type=list(PUSH_DETAIL_TYPES),
        detail={
            # Pushes, and images archived or restored: an archived image that is deployed raises an alert.
            "action-type": list(ACTION_TYPES),
            "result": ["SUCCESS"],
            "repository-name": sorted(repository_names),
        },
    )


class Promoter(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        code: lambda_.Code,
        ledger: LedgerTable,
    ) -> None:
        super().__init__(scope, construct_id)
        repositories = access.image_repositories(config)

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
        )
        nag.acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue (EventBridge target DLQ and the promoter's on-failure "
            "destination); cdk-nag only recognises queues named in another queue's redrive policy as DLQs.",
        )

        self.pipeline_function = PipelineFunction(
            self,
            "Lambda",
            config=config,
            code=code,
            service=pipeline_metrics.PROMOTER_SERVICE,
            description="tagrelay promoter: evaluates ECR pushes and commits ready releases to the GitOps repository",
            # Signature verification and PyGithub imports are CPU-bound at cold start; memory buys CPU.
            memory_size=1024,
            # Room for GitHub's compare-and-swap retries (github.commit_attempts x timeout_seconds, 5 x 10 s
            # by default) after the registry and signature checks.
            timeout=cdk.Duration.minutes(2),
            ledger_table_name=ledger.table_name,
            # Only to reach an in-VPC Argo CD with the refresh nudge (docs/deploy.md, "Network placement").
            vpc_placement=config.deploy.promoter_vpc,
        )
        self.function = self.pipeline_function.function
        self.function.configure_async_invoke(
            retry_attempts=ASYNC_RETRIES,
            max_event_age=ASYNC_MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
        )

        self.rule = events.Rule(
            self,
            "EcrPushRule",
            description="tagrelay: successful pushes to the configured ECR repositories",
            event_pattern=ecr_push_pattern([repository.name for repository in repositories]),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                self.function,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=EVENT_RETRY_ATTEMPTS,
                max_event_age=EVENT_MAX_AGE,
            )
        )

        grant_promotion_access(self, self.pipeline_function, config, ledger)

        # Manual deploys (`tagrelay deploy`) invoke the promoter directly, from the operators' roles.
        for index, role_arn in enumerate(config.deploy.operators_role_arns):
            self.function.add_permission(
                f"OperatorInvoke{index}", principal=iam.ArnPrincipal(role_arn), action="lambda:InvokeFunction"
            )


def grant_promotion_access(scope: Construct, pipeline: PipelineFunction, config: Config, ledger: LedgerTable) -> None:
    """What evaluating and committing a release needs, for the promoter and the reconcile sweep alike:
    reads of the configured ECR repositories (and the registry token), the signing keys' public halves,
    the GitHub (and Argo CD nudge) credentials, and the ledger."""
    repositories = access.image_repositories(config)
    token_policy = pipeline.add_policy(
        "EcrRegistryToken",
        iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
    )
    nag.acknowledge(
        token_policy,
        "AwsSolutions-IAM5[Resource::*]",
        "ecr:GetAuthorizationToken is account-wide by design and supports no resource-level permissions; "
        "the token grants nothing by itself (the repository statement scopes every read).",
    )
    pipeline.role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="EcrReadConfiguredRepositories",
            actions=list(access.ECR_READ_ACTIONS),
            resources=sorted(access.repository_arn(scope, repository) for repository in repositories),
        )
    )
    signing_keys = access.signing_key_statements(scope, config)
    if signing_keys:
        keys_policy = pipeline.add_policy("SigningKeys", *signing_keys)
        for statement in signing_keys:
            if statement.conditions:  # an alias: any key of the account, narrowed to the alias's key
                for resource in statement.resources:
                    nag.acknowledge(
                        keys_policy,
                        nag.wildcard_resource_finding(scope, resource),
                        "A KMS alias cannot be an IAM resource for key operations; kms:GetPublicKey is "
                        "allowed on key/* only where the condition kms:ResourceAliases names the configured "
                        "alias (apps.*.signature.key.kms_key_id), i.e. on the one key it points to.",
                    )
    secrets = access.promoter_secrets(config)
    if secrets:
        pipeline.role.add_to_principal_policy(access.secret_read_statement(scope, "ReadCredentials", secrets))
    ledger.grant_ledger_access(pipeline.role)
