"""The deployment ledger in DynamoDB (key design: adapters/ledger_schema.py, docs/ledger.md).

Every read is a GetItem or a Query; nothing here scans. Throttling, 5xx and connection failures raise
``TransientError`` so that the invocation is retried; a missing table or refused permission raises
``MisconfiguredError``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from tagrelay.adapters import ledger_schema as keys
from tagrelay.adapters.aws import ACCESS_DENIED_CODES, NOT_FOUND_CODES, error_code
from tagrelay.domain.records import (
    DecisionRecord,
    EnvironmentState,
    HistoryPage,
    PromotedRelease,
    StoredRequest,
    UndecidedRelease,
    parse_timestamp,
    timestamp,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

from tagrelay.errors import MisconfiguredError, TransientError

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_DECISION_FIELDS = {f.name for f in dataclasses.fields(DecisionRecord)}
_STATE_FIELDS = {f.name for f in dataclasses.fields(EnvironmentState)}
_OPERATOR_ERRORS = ACCESS_DENIED_CODES | NOT_FOUND_CODES


class Ledger:
    """Reads and writes the ledger table. One instance per process; the boto3 client is made lazily."""

    def __init__(self, table_name: str, *, ttl_days: int = 30, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self.ttl = timedelta(days=ttl_days)
        self._client = client
        self.request_count = 0

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            import boto3
            from botocore.config import Config as BotoConfig

            # Standard retry mode: 3 attempts with jittered backoff (about a second in all) for throttling
            # and 5xx, instead of the legacy mode's 10 attempts for DynamoDB (up to 25 s): a write that
            # still fails raises TransientError and the whole invocation is retried from current facts.
            self._client = boto3.client(
                "dynamodb", config=BotoConfig(retries={"mode": "standard", "total_max_attempts": 3})
            )
        return self._client

    # --- digest sightings: which release tags point at a digest (no tag listing needed) ---

    def record_sighting(self, repository: str, digest: str, tag: str, now: datetime) -> None:
        item = {
            keys.PARTITION_KEY: keys.sighting_partition(repository, digest),
            keys.SORT_KEY: f"{keys.TAG_PREFIX}{tag}",
            "tag": tag,
            "seen_at": timestamp(now),
            keys.TTL_ATTRIBUTE: int((now + self.ttl).timestamp()),
        }
        with self._call("UpdateItem"):
            # if_not_exists keeps the first time the tag was seen (the signature grace window counts from it).
            self.client.update_item(
                TableName=self.table_name,
                Key=_to_dynamo({keys.PARTITION_KEY: item[keys.PARTITION_KEY], keys.SORT_KEY: item[keys.SORT_KEY]}),
                UpdateExpression="SET tag = :tag, seen_at = if_not_exists(seen_at, :now), #ttl = :ttl",
                ExpressionAttributeNames={"#ttl": keys.TTL_ATTRIBUTE},
                ExpressionAttributeValues=_to_dynamo(
                    {":tag": tag, ":now": item["seen_at"], ":ttl": item[keys.TTL_ATTRIBUTE]}
                ),
            )

    def release_tags_for(self, repository: str, digest: str) -> list[str]:
        with self._call("Query"):
            response = self.client.query(
                TableName=self.table_name,
                KeyConditionExpression="#pk = :pk",
                ExpressionAttributeNames={"#pk": keys.PARTITION_KEY},
                ExpressionAttributeValues=_to_dynamo({":pk": keys.sighting_partition(repository, digest)}),
                ConsistentRead=True,
            )
        # Every sighting is written with its tag in one UpdateItem, and DynamoDB never shows an item
        # half-written (the local stack's DynamoDB proxy serializes requests so that moto does not either).
        return [str(_from_dynamo(item)["tag"]) for item in response.get("Items", [])]

    def first_seen(self, repository: str, digest: str, tag: str) -> datetime | None:
        """When the release tag was first seen on this digest (the sighting's time), if ever."""
        with self._call("GetItem"):
            response = self.client.get_item(
                TableName=self.table_name,
                Key=_to_dynamo(
                    {
                        keys.PARTITION_KEY: keys.sighting_partition(repository, digest),
                        keys.SORT_KEY: f"{keys.TAG_PREFIX}{tag}",
                    }
                ),
                ConsistentRead=True,
            )
        item = response.get("Item")
        return parse_timestamp(str(_from_dynamo(item)["seen_at"])) if item else None

    # --- environment state ---

    def environment_state(self, app: str, env: str) -> EnvironmentState | None:
        with self._call("GetItem"):
            response = self.client.get_item(
                TableName=self.table_name,
                Key=_to_dynamo({keys.PARTITION_KEY: keys.env_partition(app, env), keys.SORT_KEY: keys.STATE_SORT_KEY}),
                ConsistentRead=True,
            )
        item = response.get("Item")
        if item is None:
            return None
        data = _from_dynamo(item)
        return EnvironmentState(**{k: v for k, v in data.items() if k in _STATE_FIELDS})

    # --- decisions ---

    def record_decision(self, record: DecisionRecord) -> None:
        with self._call("PutItem"):
            self.client.put_item(TableName=self.table_name, Item=_to_dynamo(self._decision_item(record)))

    def record_deployment(self, record: DecisionRecord, gitops_repo: str, *, make_current: bool = True) -> bool:
        """Record a committed deployment exactly once per GitOps commit, and make it the environment's current
        (unless ``make_current`` is False: services/heal.py then sets it with its own condition).

        Returns False when that GitOps commit was already recorded (a duplicate or concurrent event).
        """
        assert record.gitops_commit, "a deployment record needs its GitOps commit"
        guard = {
            keys.PARTITION_KEY: keys.commit_guard_partition(gitops_repo, record.gitops_commit),
            keys.SORT_KEY: keys.COMMIT_GUARD_SORT_KEY,
            "decision_id": record.decision_id,
            # Where the record is, so that the commit leads to it (deployment_for_commit).
            "decision_pk": keys.env_partition(record.app, record.env),
            "decision_sk": keys.decision_sort_key(record.created_at, record.decision_id),
        }
        items: list[Any] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": _to_dynamo(guard),
                    "ConditionExpression": "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY},
                }
            },
            {"Put": {"TableName": self.table_name, "Item": _to_dynamo(self._decision_item(record))}},
        ]
        if record.tag and record.digests:
            # In the same transaction: a deployment is never recorded without the digests its tag had.
            items.append({"Update": self._promoted_release_update(record)})
        try:
            with self._call("TransactWriteItems"):
                self.client.transact_write_items(TransactItems=items)
        except _AlreadyRecorded:
            return False
        if make_current:
            self._advance_state(record)
        return True

    def deployment_for_commit(self, app: str, env: str, gitops_repo: str, gitops_commit: str) -> DecisionRecord | None:
        """The deployment recorded for a GitOps commit, if tagrelay recorded one (its commit guard)."""
        guard_key = {
            keys.PARTITION_KEY: keys.commit_guard_partition(gitops_repo, gitops_commit),
            keys.SORT_KEY: keys.COMMIT_GUARD_SORT_KEY,
        }
        with self._call("GetItem"):
            response = self.client.get_item(TableName=self.table_name, Key=_to_dynamo(guard_key), ConsistentRead=True)
        guard = response.get("Item")
        if guard is None:
            return None
        data = _from_dynamo(guard)
        if "decision_sk" in data:
            key = {keys.PARTITION_KEY: str(data["decision_pk"]), keys.SORT_KEY: str(data["decision_sk"])}
            with self._call("GetItem"):
                found = self.client.get_item(TableName=self.table_name, Key=_to_dynamo(key), ConsistentRead=True)
            item = found.get("Item")
            return _record(item) if item else None
        # A guard written before it named its record: look among the environment's newest deployments.
        for index, record in enumerate(self.deployments(app, env)):
            if record.gitops_commit == gitops_commit:
                return record
            if index >= 200:
                break
        return None

    def set_current(self, record: DecisionRecord, *, expected_gitops_commit: str | None) -> bool:
        """Make ``record`` the environment's current deployment, if the state still names the GitOps commit
        the caller read (``expected_gitops_commit``; None: no deployment yet). False when another writer
        changed it in between (services/heal.py then reads again)."""
        values: dict[str, Any] = {}
        if expected_gitops_commit is None:
            condition = "attribute_not_exists(gitops_commit)"
        else:
            condition = "gitops_commit = :expected"
            values[":expected"] = expected_gitops_commit
        return self._make_current(record, condition, values)

    def note_alert(self, app: str, env: str, key: str) -> bool:
        """Remember on the environment's state that an alert was raised for ``key`` (e.g. an archived digest);
        False when it was already. A new current deployment forgets them (``_advance_state``, ``set_current``)."""
        try:
            with self._call("UpdateItem"):
                self.client.update_item(
                    TableName=self.table_name,
                    Key=_to_dynamo(
                        {keys.PARTITION_KEY: keys.env_partition(app, env), keys.SORT_KEY: keys.STATE_SORT_KEY}
                    ),
                    UpdateExpression="ADD alerts :keys",
                    ConditionExpression="attribute_exists(#pk) AND NOT contains(alerts, :key)",
                    ExpressionAttributeNames={"#pk": keys.PARTITION_KEY},
                    ExpressionAttributeValues=_to_dynamo({":keys": {key}, ":key": key}),
                )
        except _AlreadyRecorded:
            return False
        return True

    # --- releases not decided yet (the reconcile sweep's work list) ---

    def note_release_waiting(self, app: str, tag: str, *, reason: str, message: str, now: datetime) -> None:
        """A release waits (incomplete, unsigned yet, no environment yet): keep it in the ``undecided`` index,
        by the time it was first seen, unless it was decided before (a late duplicate event)."""
        first_seen = timestamp(now)
        values = {
            ":app": app,
            ":tag": tag,
            ":now": first_seen,
            ":reason": reason,
            ":message": message[:1000],
            ":marker": keys.UNDECIDED_MARKER,
            ":sk": keys.undecided_sort_key(first_seen, app, tag),
            ":ttl": int((now + self.ttl).timestamp()),
        }
        try:
            with self._call("UpdateItem"):
                self.client.update_item(
                    TableName=self.table_name,
                    Key=_to_dynamo(self._release_key(app, tag)),
                    UpdateExpression=(
                        "SET app = :app, tag = :tag, first_seen_at = if_not_exists(first_seen_at, :now),"
                        " last_seen_at = :now, waiting_reason = :reason, waiting_message = :message,"
                        " #gpk = :marker, #gsk = if_not_exists(#gsk, :sk), #ttl = :ttl"
                    ),
                    ConditionExpression="attribute_not_exists(decided_at)",
                    ExpressionAttributeNames={
                        "#gpk": keys.UNDECIDED_PARTITION_KEY,
                        "#gsk": keys.UNDECIDED_SORT_KEY,
                        "#ttl": keys.TTL_ATTRIBUTE,
                    },
                    ExpressionAttributeValues=_to_dynamo(values),
                )
        except _AlreadyRecorded:
            pass  # decided already: a wait now (its images deleted since, say) does not reopen it

    def note_release_decided(self, app: str, tag: str, *, decision: str, now: datetime) -> None:
        """The release is decided (committed, rejected, superseded, skipped, no-op): out of ``undecided``."""
        with self._call("UpdateItem"):
            self.client.update_item(
                TableName=self.table_name,
                Key=_to_dynamo(self._release_key(app, tag)),
                UpdateExpression="SET app = :app, tag = :tag, decided_at = :now, decision = :decision, #ttl = :ttl"
                " REMOVE #gpk, #gsk",
                ExpressionAttributeNames={
                    "#gpk": keys.UNDECIDED_PARTITION_KEY,
                    "#gsk": keys.UNDECIDED_SORT_KEY,
                    "#ttl": keys.TTL_ATTRIBUTE,
                },
                ExpressionAttributeValues=_to_dynamo(
                    {
                        ":app": app,
                        ":tag": tag,
                        ":now": timestamp(now),
                        ":decision": decision,
                        ":ttl": int((now + self.ttl).timestamp()),
                    }
                ),
            )

    def undecided_releases(self, *, seen_since: str, limit: int) -> tuple[list[UndecidedRelease], bool]:
        """Releases first seen at or after ``seen_since`` and not decided, oldest first: one Query of the
        sparse ``undecided`` index per page. Returns at most ``limit`` and whether more were left."""
        found: list[UndecidedRelease] = []
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": keys.UNDECIDED_INDEX,
            "KeyConditionExpression": "#pk = :pk AND #sk >= :since",
            "ExpressionAttributeNames": {"#pk": keys.UNDECIDED_PARTITION_KEY, "#sk": keys.UNDECIDED_SORT_KEY},
            "ExpressionAttributeValues": _to_dynamo({":pk": keys.UNDECIDED_MARKER, ":since": seen_since}),
            "ScanIndexForward": True,
            "Limit": min(100, limit + 1),
        }
        while True:
            with self._call("Query"):
                response = self.client.query(**query)
            for item in response.get("Items", []):
                data = _from_dynamo(item)
                if len(found) == limit:
                    return found, True
                found.append(
                    UndecidedRelease(
                        app=str(data["app"]),
                        tag=str(data["tag"]),
                        first_seen_at=str(data["first_seen_at"]),
                        waiting_reason=data.get("waiting_reason"),
                        waiting_message=data.get("waiting_message"),
                    )
                )
            start = response.get("LastEvaluatedKey")
            if not start:
                return found, False
            query["ExclusiveStartKey"] = start

    @staticmethod
    def _release_key(app: str, tag: str) -> dict[str, Any]:
        return {keys.PARTITION_KEY: keys.release_partition(app, tag), keys.SORT_KEY: keys.RELEASE_STATUS_SORT_KEY}

    # --- operator requests (idempotency) and identity-proof nonces (single use) ---

    def begin_request(
        self, request_id: str, *, fingerprint: str, operation: str, app: str, env: str, actor: str, now: datetime
    ) -> StoredRequest | None:
        """Remember an operator request by its id (a conditional put): None the first time; a request
        already seen with this id is returned instead, with its outcome once it was answered."""
        item = {
            keys.PARTITION_KEY: keys.request_partition(request_id),
            keys.SORT_KEY: keys.REQUEST_SORT_KEY,
            "request_id": request_id,
            "fingerprint": fingerprint,
            "status": "started",
            "operation": operation,
            "app": app,
            "env": env,
            "actor": actor,
            "started_at": timestamp(now),
            keys.TTL_ATTRIBUTE: int((now + self.ttl).timestamp()),
        }
        try:
            with self._call("PutItem"):
                self.client.put_item(
                    TableName=self.table_name,
                    Item=_to_dynamo(item),
                    ConditionExpression="attribute_not_exists(#pk)",
                    ExpressionAttributeNames={"#pk": keys.PARTITION_KEY},
                )
        except _AlreadyRecorded:
            return self._stored_request(request_id)
        return None

    def finish_request(self, request_id: str, outcome: Mapping[str, Any], *, now: datetime) -> None:
        """Keep the answer to an operator request, for a repeat of the same request id."""
        with self._call("UpdateItem"):
            self.client.update_item(
                TableName=self.table_name,
                Key=_to_dynamo(
                    {keys.PARTITION_KEY: keys.request_partition(request_id), keys.SORT_KEY: keys.REQUEST_SORT_KEY}
                ),
                UpdateExpression="SET #status = :done, outcome = :outcome, finished_at = :now",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_to_dynamo(
                    {
                        ":done": "done",
                        ":outcome": json.dumps(dict(outcome), sort_keys=True),
                        ":now": timestamp(now),
                    }
                ),
            )

    def _stored_request(self, request_id: str) -> StoredRequest | None:
        key = {keys.PARTITION_KEY: keys.request_partition(request_id), keys.SORT_KEY: keys.REQUEST_SORT_KEY}
        with self._call("GetItem"):
            response = self.client.get_item(TableName=self.table_name, Key=_to_dynamo(key), ConsistentRead=True)
        item = response.get("Item")
        if item is None:
            return None  # expired between the two calls
        data = _from_dynamo(item)
        outcome = json.loads(str(data["outcome"])) if "outcome" in data else None
        return StoredRequest(request_id, str(data.get("fingerprint", "")), str(data.get("status", "")), outcome)

    def use_nonce(self, nonce: str, *, expires_at: datetime) -> bool:
        """Record an identity proof's nonce as used (a conditional put); False when it was used before.

        The item expires (TTL) once a proof carrying it could no longer be fresh anyway."""
        item = {
            keys.PARTITION_KEY: keys.nonce_partition(nonce),
            keys.SORT_KEY: keys.NONCE_SORT_KEY,
            keys.TTL_ATTRIBUTE: int(expires_at.timestamp()),
        }
        try:
            with self._call("PutItem"):
                self.client.put_item(
                    TableName=self.table_name,
                    Item=_to_dynamo(item),
                    ConditionExpression="attribute_not_exists(#pk)",
                    ExpressionAttributeNames={"#pk": keys.PARTITION_KEY},
                )
        except _AlreadyRecorded:
            return False
        return True

    def _promoted_release_update(self, record: DecisionRecord) -> dict[str, Any]:
        """Keep the first digests a tag was committed with (if_not_exists), and add the environment."""
        assert record.tag is not None
        return {
            "TableName": self.table_name,
            "Key": _to_dynamo(
                {
                    keys.PARTITION_KEY: keys.release_partition(record.app, record.tag),
                    keys.SORT_KEY: keys.RELEASE_SORT_KEY,
                }
            ),
            "UpdateExpression": (
                "SET app = :app, tag = :tag, digests = if_not_exists(digests, :digests),"
                " promoted_at = if_not_exists(promoted_at, :at) ADD envs :env"
            ),
            "ExpressionAttributeValues": _to_dynamo(
                {
                    ":app": record.app,
                    ":tag": record.tag,
                    ":digests": dict(record.digests),
                    ":at": record.committed_at or record.created_at,
                    ":env": {record.env},
                }
            ),
        }

    def promoted_release(self, app: str, tag: str) -> PromotedRelease | None:
        """The digests ``tag`` had when tagrelay first committed it, in any environment (one GetItem)."""
        with self._call("GetItem"):
            response = self.client.get_item(
                TableName=self.table_name,
                Key=_to_dynamo(
                    {keys.PARTITION_KEY: keys.release_partition(app, tag), keys.SORT_KEY: keys.RELEASE_SORT_KEY}
                ),
                ConsistentRead=True,
            )
        item = response.get("Item")
        if item is None:
            return None
        data = _from_dynamo(item)
        return PromotedRelease(
            app=app,
            tag=tag,
            digests={str(k): str(v) for k, v in (data.get("digests") or {}).items()},
            envs=tuple(sorted(str(env) for env in data.get("envs") or ())),
            promoted_at=data.get("promoted_at"),
        )

    def _advance_state(self, record: DecisionRecord) -> None:
        """Make this deployment the environment's current one, unless a later one already is."""
        # False: a later deployment is already current, nothing to do.
        self._make_current(record, "attribute_not_exists(committed_at) OR committed_at <= :at", {})

    def _make_current(self, record: DecisionRecord, condition: str, condition_values: dict[str, Any]) -> bool:
        """Point the environment's state at ``record`` if ``condition`` holds; forget the alerts of the one before."""
        values = {
            ":id": record.decision_id,
            ":tag": record.tag,
            ":sha": record.full_sha,
            ":at": record.committed_at or record.created_at,
            ":commit": record.gitops_commit,
            ":app": record.app,
            ":env": record.env,
            **condition_values,
        }
        try:
            with self._call("UpdateItem"):
                self.client.update_item(
                    TableName=self.table_name,
                    Key=_to_dynamo(
                        {
                            keys.PARTITION_KEY: keys.env_partition(record.app, record.env),
                            keys.SORT_KEY: keys.STATE_SORT_KEY,
                        }
                    ),
                    UpdateExpression=(
                        "SET app = :app, env = :env, current_decision_id = :id, current_tag = :tag,"
                        " current_sha = :sha, committed_at = :at, gitops_commit = :commit REMOVE alerts"
                    ),
                    ConditionExpression=condition,
                    ExpressionAttributeValues=_to_dynamo(values),
                )
        except _AlreadyRecorded:
            return False
        return True

    def _decision_item(self, record: DecisionRecord) -> dict[str, Any]:
        item: dict[str, Any] = {k: v for k, v in dataclasses.asdict(record).items() if v not in (None, "", {}, (), [])}
        item[keys.PARTITION_KEY] = keys.env_partition(record.app, record.env)
        item[keys.SORT_KEY] = keys.decision_sort_key(record.created_at, record.decision_id)
        if record.sha:
            item[keys.BY_SHA_PARTITION_KEY] = keys.sha_partition(record.sha)
            item[keys.BY_SHA_SORT_KEY] = f"{record.created_at}#{record.decision_id}"
        if record.in_flight:
            item[keys.IN_FLIGHT_PARTITION_KEY] = keys.IN_FLIGHT_MARKER
            item[keys.IN_FLIGHT_SORT_KEY] = f"{record.created_at}#{record.decision_id}"
        if record.transient:
            expires = parse_timestamp(record.created_at) + self.ttl
            item[keys.TTL_ATTRIBUTE] = int(expires.timestamp())
        return item

    # --- reads for the CLI and the tracker ---

    def history(self, app: str, env: str, *, limit: int = 20, next_token: dict[str, Any] | None = None) -> HistoryPage:
        """Decisions of one environment, newest first."""
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY, "#sk": keys.SORT_KEY},
            "ExpressionAttributeValues": _to_dynamo(
                {":pk": keys.env_partition(app, env), ":prefix": keys.DECISION_PREFIX}
            ),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if next_token:
            query["ExclusiveStartKey"] = next_token
        with self._call("Query"):
            response = self.client.query(**query)
        return HistoryPage(
            [_record(item) for item in response.get("Items", [])], response.get("LastEvaluatedKey") or None
        )

    def history_by_sha(self, sha: str, *, limit: int = 20, next_token: dict[str, Any] | None = None) -> HistoryPage:
        """Decisions about one commit across environments and apps, newest first."""
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": keys.BY_SHA_INDEX,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": keys.BY_SHA_PARTITION_KEY},
            "ExpressionAttributeValues": _to_dynamo({":pk": keys.sha_partition(sha)}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if next_token:
            query["ExclusiveStartKey"] = next_token
        with self._call("Query"):
            response = self.client.query(**query)
        records = [_record(item) for item in response.get("Items", [])]
        if len(sha) > keys.SHORT_SHA_LENGTH:
            records = [r for r in records if (r.full_sha or "").startswith(sha)]
        return HistoryPage(records, response.get("LastEvaluatedKey") or None)

    def in_flight(self) -> list[DecisionRecord]:
        """Committed deployments whose outcome is not known yet, oldest first (one Query, paginated)."""
        records: list[DecisionRecord] = []
        start: dict[str, Any] | None = None
        while True:
            query: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": keys.IN_FLIGHT_INDEX,
                "KeyConditionExpression": "#pk = :pk",
                "ExpressionAttributeNames": {"#pk": keys.IN_FLIGHT_PARTITION_KEY},
                "ExpressionAttributeValues": _to_dynamo({":pk": keys.IN_FLIGHT_MARKER}),
            }
            if start:
                query["ExclusiveStartKey"] = start
            with self._call("Query"):
                response = self.client.query(**query)
            records.extend(_record(item) for item in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                return records

    @contextmanager
    def _call(self, operation: str) -> Iterator[None]:
        self.request_count += 1
        try:
            yield
        except ClientError as exc:
            code = error_code(exc)
            if code in ("ConditionalCheckFailedException", "TransactionCanceledException") and _is_condition(exc):
                raise _AlreadyRecorded from None
            if code in _OPERATOR_ERRORS:
                raise MisconfiguredError(
                    "dynamodb", f"{operation} on table {self.table_name} refused ({code}); check the table and IAM"
                ) from None
            raise TransientError("dynamodb", f"{operation} failed ({code or 'unknown error'})") from exc
        except BotoCoreError as exc:
            # botocore's own errors (no endpoint, no region, no credentials) carry no secret: say which.
            raise TransientError("dynamodb", f"{operation} failed: {type(exc).__name__}: {exc}") from exc

    # --- deployment tracking (the tracker) and the CLI's paging ---

    def record_tracking(
        self, record: DecisionRecord, status: str, attributes: Mapping[str, Any], *, final: bool
    ) -> bool:
        """Move one deployment from the status it had when read (``record.status``) to ``status``.

        One conditional UpdateItem: it applies only while the item still has the status the caller
        evaluated, so a concurrent tracker run or a stale read of the in-flight index never overwrites
        a newer state; it then returns False and writes nothing. ``attributes`` are set alongside (None
        values are left out); ``final`` also removes the in-flight index keys, so the deployment leaves
        the tracker's query.
        """
        names = {"#pk": keys.PARTITION_KEY, "#status": "status"}
        values: dict[str, Any] = {":status": status}
        assignments = ["#status = :status"]
        for index, (name, value) in enumerate(sorted(attributes.items())):
            if value is None or name in (keys.PARTITION_KEY, keys.SORT_KEY, "status"):
                continue
            names[f"#a{index}"] = name
            values[f":a{index}"] = value
            assignments.append(f"#a{index} = :a{index}")
        expression = "SET " + ", ".join(assignments)
        if final:
            names["#gpk"], names["#gsk"] = keys.IN_FLIGHT_PARTITION_KEY, keys.IN_FLIGHT_SORT_KEY
            expression += " REMOVE #gpk, #gsk"
        if record.status is None:
            condition = "attribute_exists(#pk) AND attribute_not_exists(#status)"
        else:
            condition = "attribute_exists(#pk) AND #status = :previous"
            values[":previous"] = record.status
        try:
            with self._call("UpdateItem"):
                self.client.update_item(
                    TableName=self.table_name,
                    Key=_to_dynamo(_decision_key(record)),
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=_to_dynamo(values),
                )
        except _AlreadyRecorded:
            return False
        return True

    def decision(self, app: str, env: str, created_at: str, decision_id: str) -> DecisionRecord | None:
        """One decision by its key (the environment state names the current one by time and id)."""
        key = {
            keys.PARTITION_KEY: keys.env_partition(app, env),
            keys.SORT_KEY: keys.decision_sort_key(created_at, decision_id),
        }
        with self._call("GetItem"):
            response = self.client.get_item(TableName=self.table_name, Key=_to_dynamo(key), ConsistentRead=True)
        item = response.get("Item")
        return _record(item) if item else None

    @staticmethod
    def resume_key(record: DecisionRecord, *, by_sha: bool = False) -> dict[str, Any]:
        """The ``next_token`` that resumes ``history`` (or ``history_by_sha``) right after ``record``.

        For a caller that merges several queries, or leaves out records it does not show: it pages on
        from the last record it used rather than from where DynamoDB stopped reading.
        """
        key = _decision_key(record)
        if by_sha and record.sha:
            key[keys.BY_SHA_PARTITION_KEY] = keys.sha_partition(record.sha)
            key[keys.BY_SHA_SORT_KEY] = f"{record.created_at}#{record.decision_id}"
        return _to_dynamo(key)

    # --- operator commands: pins, and deployments by time range (rollback target, DORA figures) ---

    def set_pin(self, app: str, env: str, *, reason: str, pinned_by: str, pinned_at: str) -> None:
        """Pin an environment: push-triggered promotions to it are skipped until ``clear_pin``."""
        with self._call("UpdateItem"):
            self.client.update_item(
                TableName=self.table_name,
                Key=_to_dynamo({keys.PARTITION_KEY: keys.env_partition(app, env), keys.SORT_KEY: keys.STATE_SORT_KEY}),
                UpdateExpression=(
                    "SET app = :app, env = :env, pinned = :pinned, pin_reason = :reason,"
                    " pinned_by = :by, pinned_at = :at"
                ),
                ExpressionAttributeValues=_to_dynamo(
                    {":app": app, ":env": env, ":pinned": True, ":reason": reason, ":by": pinned_by, ":at": pinned_at}
                ),
            )

    def clear_pin(self, app: str, env: str) -> None:
        with self._call("UpdateItem"):
            self.client.update_item(
                TableName=self.table_name,
                Key=_to_dynamo({keys.PARTITION_KEY: keys.env_partition(app, env), keys.SORT_KEY: keys.STATE_SORT_KEY}),
                UpdateExpression="SET app = :app, env = :env, pinned = :pinned REMOVE pin_reason, pinned_by, pinned_at",
                ExpressionAttributeValues=_to_dynamo({":app": app, ":env": env, ":pinned": False}),
            )

    def deployments(
        self,
        app: str,
        env: str,
        *,
        since: str | None = None,
        through_key: tuple[str, str] | None = None,
        newest_first: bool = True,
        page_size: int = 100,
    ) -> Iterator[DecisionRecord]:
        """Committed deployments of one environment, read lazily a page at a time.

        One Query per page on the environment's partition, by sort-key range: from ``since`` (a
        created_at, inclusive) up to ``through_key`` (``(created_at, decision_id)`` of a decision,
        inclusive), or to the newest. Other decisions in the range are read but filtered out by DynamoDB.
        """
        low = f"{keys.DECISION_PREFIX}{since or ''}"
        high = keys.decision_sort_key(*through_key) if through_key else f"{keys.DECISION_PREFIX}~"
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :low AND :high",
            "FilterExpression": "#outcome = :committed",
            "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY, "#sk": keys.SORT_KEY, "#outcome": "outcome"},
            "ExpressionAttributeValues": _to_dynamo(
                {":pk": keys.env_partition(app, env), ":low": low, ":high": high, ":committed": "committed"}
            ),
            "ScanIndexForward": not newest_first,
            "Limit": page_size,
        }
        while True:
            with self._call("Query"):
                response = self.client.query(**query)
            yield from (_record(item) for item in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                return
            query["ExclusiveStartKey"] = start


class _AlreadyRecorded(Exception):
    """A conditional write found the item already there."""


def _is_condition(exc: ClientError) -> bool:
    if error_code(exc) == "ConditionalCheckFailedException":
        return True
    reasons = exc.response.get("CancellationReasons", [])
    return any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons)


def _to_dynamo(data: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(_plain(value)) for key, value in data.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, datetime):
        return timestamp(value.astimezone(UTC))
    return value


def _from_dynamo(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _record(item: dict[str, Any]) -> DecisionRecord:
    data = _from_dynamo(item)
    fields = {k: v for k, v in data.items() if k in _DECISION_FIELDS}
    if "event_ids" in fields:
        fields["event_ids"] = tuple(fields["event_ids"])
    return DecisionRecord(**fields)


def _decision_key(record: DecisionRecord) -> dict[str, Any]:
    return {
        keys.PARTITION_KEY: keys.env_partition(record.app, record.env),
        keys.SORT_KEY: keys.decision_sort_key(record.created_at, record.decision_id),
    }
