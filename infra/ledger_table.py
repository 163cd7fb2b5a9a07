"""The deployment ledger's DynamoDB table, with the keys and indexes of tagrelay.adapters.ledger_schema."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from tagrelay.adapters import ledger_schema as keys

# What tagrelay.adapters.store calls (TransactWriteItems is authorised per item: PutItem, ConditionCheckItem).
# No Scan, no DeleteItem, no batch calls: the ledger is appended to and updated, never swept.
LEDGER_ACTIONS = (
    "dynamodb:ConditionCheckItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)
INDEXES = (
    (keys.BY_SHA_INDEX, keys.BY_SHA_PARTITION_KEY, keys.BY_SHA_SORT_KEY),
    (keys.IN_FLIGHT_INDEX, keys.IN_FLIGHT_PARTITION_KEY, keys.IN_FLIGHT_SORT_KEY),
)


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class LedgerTable(Construct):
    """On-demand, point-in-time recovery, deletion protection, retained when the stack goes."""

    def __init__(self, scope: Construct, construct_id: str, *, table_name: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.TableV2(
            self,
            "Table",
            table_name=table_name,
            partition_key=_string(keys.PARTITION_KEY),
            sort_key=_string(keys.SORT_KEY),
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            # Transient items (waits, digest sightings) carry an expiry in epoch seconds.
            time_to_live_attribute=keys.TTL_ATTRIBUTE,
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=index,
                    partition_key=_string(partition_key),
                    sort_key=_string(sort_key),
                    projection_type=dynamodb.ProjectionType.ALL,
                )
                for index, partition_key, sort_key in INDEXES
            ],
        )

    @property
    def index_arns(self) -> list[str]:
        return [f"{self.table.table_arn}/index/{index}" for index, _, _ in INDEXES]

    def grant_ledger_access(self, grantee: iam.IGrantable) -> None:
        """Exactly the ledger's operations, on the table and its two indexes by name (no index/* wildcard)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="LedgerReadWrite",
                actions=list(LEDGER_ACTIONS),
                resources=[self.table.table_arn, *self.index_arns],
            )
        )
