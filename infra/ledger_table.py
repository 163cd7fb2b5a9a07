"""The deployment ledger's DynamoDB table, with the keys and indexes of tagrelay.adapters.ledger_schema.

The table has a fixed name (`ledger.table`: the functions and the `tagrelay` command find it by that
name), deletion protection, and is retained when the stack is deleted. Those three together would make a
failed first `cdk deploy` impossible to retry: the rollback cannot delete a protected table, and the
retry's "already exists". So the table is **created last**: it depends on every other resource of the
stack, and nothing refers to it (the functions get its name, and their policies its ARN, as strings built
from the configuration). A first deploy that fails on any other resource fails before the table exists;
the log groups, the only other named and retained resources, are removed by a rollback of the deploy
that created them (RETAIN_ON_UPDATE_OR_DELETE). tests/cdk/test_deploy_checks.py proves both on the
template.
"""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

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
    (keys.UNDECIDED_INDEX, keys.UNDECIDED_PARTITION_KEY, keys.UNDECIDED_SORT_KEY),
)


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


@jsii.implements(cdk.IAspect)
class _CreatedLast:
    """Makes the table depend on every other resource of its stack, including those added after it."""

    def __init__(self, table: cdk.CfnResource) -> None:
        self._table = table

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, cdk.CfnResource) and node is not self._table:
            self._table.node.add_dependency(node)


class LedgerTable(Construct):
    """On-demand, point-in-time recovery, deletion protection, retained when the stack goes, created last.

    Refer to it through ``table_name``, ``table_arn`` and ``grant_ledger_access`` only: a reference to
    ``table``'s own attributes would make that resource depend on the table, which depends on it (a
    cycle CloudFormation refuses; cfn-lint in `make synth` reports it as E3004).
    """

    def __init__(self, scope: Construct, construct_id: str, *, table_name: str) -> None:
        super().__init__(scope, construct_id)
        self.table_name = table_name
        self.table_arn = cdk.Stack.of(self).format_arn(service="dynamodb", resource="table", resource_name=table_name)
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

        table = self.table.node.default_child
        if not isinstance(table, cdk.CfnResource):
            raise TypeError(f"expected the table's CfnResource, got {table!r}")
        cdk.Aspects.of(cdk.Stack.of(self)).add(_CreatedLast(table), priority=cdk.AspectPriority.MUTATING)

    @property
    def index_arns(self) -> list[str]:
        return [f"{self.table_arn}/index/{index}" for index, _, _ in INDEXES]

    def grant_ledger_access(self, grantee: iam.IGrantable) -> None:
        """Exactly the ledger's operations, on the table and its indexes by name (no index/* wildcard)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="LedgerReadWrite",
                actions=list(LEDGER_ACTIONS),
                resources=[self.table_arn, *self.index_arns],
            )
        )
