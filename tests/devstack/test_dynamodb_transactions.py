"""DynamoDB transactions on the local stack are isolated, as DynamoDB's are.

moto 5.2.5 applies a TransactWriteItems item by item and, when one item's condition fails, restores every
table it names to a copy made when the transaction began: whatever concurrent requests wrote meanwhile
is undone. The ledger's commit guard and its deployment record are written in one transaction; a
duplicate event's transaction cancelled at the same moment could leave the guard without its record
(the soak met it). The fault proxy in front of moto forwards one request at a time, so a test sees
what DynamoDB guarantees (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html,
"Isolation levels for DynamoDB transactions": serializable between transactional and standard writes).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from devstack.stack import LEDGER_TABLE, LocalStack

pytestmark = pytest.mark.stack

PAIRS = 100


def _client(stack: LocalStack) -> Any:
    env = stack.aws_env
    return boto3.client(
        "dynamodb",
        endpoint_url=env["AWS_ENDPOINT_URL_DYNAMODB"],  # the fault proxy, as every client of the stack
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
    )


def _guarded_write(client: Any, n: int, writer: str) -> bool:
    """A guard and its record in one transaction, the guard conditional (as Ledger.record_deployment)."""
    guard = {"pk": {"S": f"TXGUARD#{n}"}, "sk": {"S": "COMMIT"}, "writer": {"S": writer}}
    record = {"pk": {"S": "TXRECORDS"}, "sk": {"S": f"{n}#{writer}"}}
    try:
        client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": LEDGER_TABLE,
                        "Item": guard,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Put": {"TableName": LEDGER_TABLE, "Item": record}},
            ]
        )
    except client.exceptions.TransactionCanceledException:
        return False
    return True


def test_a_cancelled_transaction_never_undoes_a_concurrent_one(stack: LocalStack) -> None:
    stack.reset_ledger()
    clients = [_client(stack) for _ in range(4)]

    def race(job: tuple[int, int]) -> bool:
        n, writer = job
        return _guarded_write(clients[(2 * n + writer) % len(clients)], n, f"w{writer}")

    # Two writers race for each guard: exactly one transaction wins, and what it wrote stays.
    jobs = [(n, writer) for n in range(PAIRS) for writer in (0, 1)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        won = [job for job, ok in zip(jobs, pool.map(race, jobs), strict=True) if ok]

    client = clients[0]
    assert sorted(n for n, _ in won) == list(range(PAIRS))
    for n, writer in won:
        guard = client.get_item(
            TableName=LEDGER_TABLE, Key={"pk": {"S": f"TXGUARD#{n}"}, "sk": {"S": "COMMIT"}}, ConsistentRead=True
        ).get("Item")
        record = client.get_item(
            TableName=LEDGER_TABLE, Key={"pk": {"S": "TXRECORDS"}, "sk": {"S": f"{n}#w{writer}"}}, ConsistentRead=True
        ).get("Item")
        assert guard is not None and guard["writer"]["S"] == f"w{writer}", (n, writer, guard)
        assert record is not None, f"the record of guard {n} was undone by a concurrent transaction"
    stack.reset_ledger()
