"""The ledger's DynamoDB key design, shared by the store adapter and the CDK table (docs/ledger.md).

One table, several kinds of item, three sparse global secondary indexes; every read is a key lookup
or a Query, never a Scan:

| item             | pk                         | sk                   | gsi1 (by-sha)              | gsi2 (in-flight)     |
|------------------|----------------------------|----------------------|----------------------------|----------------------|
| decision         | ENV#<app>#<env>            | DEC#<time>#<id>      | SHA#<sha7> / <time>#<id>   | INFLIGHT / <time>#<id> while tracked |
| environment state| ENV#<app>#<env>            | STATE                | -                          | -                    |
| digest sighting  | DIGEST#<repository>@<dig.> | TAG#<tag>            | -                          | -                    |
| commit guard     | COMMIT#<repo>@<commit>     | COMMIT               | -                          | -                    |
| release status   | RELEASE#<app>#<tag>        | STATUS               | gsi3 (undecided): UNDECIDED / <first seen>#<app>#<tag> while undecided |
| operator request | REQ#<request id>           | REQUEST              | -                          | -                    |
| used proof nonce | NONCE#<nonce>              | NONCE                | -                          | -                    |
| promoted release | RELEASE#<app>#<tag>        | DIGESTS              | -                          | -                    |

A promoted release keeps the digests a release tag had when tagrelay first committed it, so a later
evaluation that finds the tag pointing elsewhere detects the move (``tag_moved``); it never expires.
"""

from __future__ import annotations

PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "ttl"

BY_SHA_INDEX = "by-sha"
BY_SHA_PARTITION_KEY = "gsi1pk"
BY_SHA_SORT_KEY = "gsi1sk"

IN_FLIGHT_INDEX = "in-flight"
IN_FLIGHT_PARTITION_KEY = "gsi2pk"
IN_FLIGHT_SORT_KEY = "gsi2sk"
IN_FLIGHT_MARKER = "INFLIGHT"

# Releases seen but not decided yet (the reconcile sweep's query): sparse, one partition.
UNDECIDED_INDEX = "undecided"
UNDECIDED_PARTITION_KEY = "gsi3pk"
UNDECIDED_SORT_KEY = "gsi3sk"
UNDECIDED_MARKER = "UNDECIDED"

DECISION_PREFIX = "DEC#"
STATE_SORT_KEY = "STATE"
TAG_PREFIX = "TAG#"
SHORT_SHA_LENGTH = 7


def env_partition(app: str, env: str) -> str:
    return f"ENV#{app}#{env}"


def decision_sort_key(created_at: str, decision_id: str) -> str:
    return f"{DECISION_PREFIX}{created_at}#{decision_id}"


def sha_partition(sha: str) -> str:
    return f"SHA#{sha[:SHORT_SHA_LENGTH]}"


RELEASE_SORT_KEY = "DIGESTS"


def release_partition(app: str, tag: str) -> str:
    return f"RELEASE#{app}#{tag}"


def sighting_partition(repository: str, digest: str) -> str:
    return f"DIGEST#{repository}@{digest}"


# Item that makes a deployment record unique per GitOps commit (see Ledger.record_deployment).
COMMIT_GUARD_PREFIX = "COMMIT#"
COMMIT_GUARD_SORT_KEY = "COMMIT"


def commit_guard_partition(gitops_repo: str, gitops_commit: str) -> str:
    return f"{COMMIT_GUARD_PREFIX}{gitops_repo}@{gitops_commit}"


# A release's status beside its promoted digests (same partition): when it was first seen, and whether it
# is decided (the reconcile sweep's `undecided` index, services/reconcile.py).
RELEASE_STATUS_SORT_KEY = "STATUS"


def undecided_sort_key(first_seen_at: str, app: str, tag: str) -> str:
    return f"{first_seen_at}#{app}#{tag}"


# An operator request by its id (services/operate.py): made once, its outcome kept for a repeat.
REQUEST_PREFIX = "REQ#"
REQUEST_SORT_KEY = "REQUEST"


def request_partition(request_id: str) -> str:
    return f"{REQUEST_PREFIX}{request_id}"


# A used identity-proof nonce (adapters/identity.py): a proof is accepted once.
NONCE_PREFIX = "NONCE#"
NONCE_SORT_KEY = "NONCE"


def nonce_partition(nonce: str) -> str:
    return f"{NONCE_PREFIX}{nonce}"


def table_definition(table_name: str) -> dict[str, object]:
    """CreateTable arguments for the local stack; the CDK stack declares the same keys and indexes."""
    string = "S"
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": string}
            for name in (
                PARTITION_KEY,
                SORT_KEY,
                BY_SHA_PARTITION_KEY,
                BY_SHA_SORT_KEY,
                IN_FLIGHT_PARTITION_KEY,
                IN_FLIGHT_SORT_KEY,
                UNDECIDED_PARTITION_KEY,
                UNDECIDED_SORT_KEY,
            )
        ],
        "KeySchema": [
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": hash_key, "KeyType": "HASH"},
                    {"AttributeName": range_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, hash_key, range_key in (
                (BY_SHA_INDEX, BY_SHA_PARTITION_KEY, BY_SHA_SORT_KEY),
                (IN_FLIGHT_INDEX, IN_FLIGHT_PARTITION_KEY, IN_FLIGHT_SORT_KEY),
                (UNDECIDED_INDEX, UNDECIDED_PARTITION_KEY, UNDECIDED_SORT_KEY),
            )
        ],
    }
