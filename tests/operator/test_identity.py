"""The caller's identity (adapters/identity.py): a signed sts:GetCallerIdentity, checked, then replayed
to the configured STS endpoint only.

Against moto's STS (it answers from the access key id and does not verify signatures, so the
signature itself is not tested here), and against a recording stand-in STS that shows where the
replay goes and what a refusal looks like.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.credentials import ReadOnlyCredentials

from devstack.process import RunningServer, free_port, start_server
from tagrelay.adapters.identity import BINDING_HEADER, NONCE_HEADER, StsIdentityVerifier, sign_caller_identity
from tagrelay.adapters.ledger_schema import nonce_partition, table_definition
from tagrelay.adapters.store import Ledger
from tagrelay.domain.operator import principal_allowed
from tagrelay.errors import IdentityError

TESTING = ReadOnlyCredentials("testing", "testing", "testing")
BINDING = "a" * 64

# A stand-in STS: records every POST (path, headers, body) as a JSON line, answers with a fixed status.
_RECORDER = """
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
port, status, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
BODY = {200: b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
             b'<Arn>arn:aws:sts::111122223333:assumed-role/oncall/alice</Arn><UserId>AROAX:alice</UserId>'
             b'<Account>111122223333</Account></GetCallerIdentityResult></GetCallerIdentityResponse>',
        403: b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
             b'<Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match'
             b' the signature you provided. Canonical request: POST / ...</Message></Error></ErrorResponse>'}
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(204); self.end_headers()
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        with open(log, "a") as out:
            out.write(json.dumps({"path": self.path, "headers": dict(self.headers), "body": body}) + "\\n")
        self.send_response(status); self.send_header("Content-Type", "text/xml"); self.end_headers()
        self.wfile.write(BODY[status])
    def log_message(self, *args):
        pass
HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


class RecordingSts:
    def __init__(self, server: RunningServer, log: Path) -> None:
        self.server, self.log = server, log
        self.url = server.url

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def start_recorder(workdir: Path, name: str, status: int) -> RecordingSts:
    port = free_port()
    log = workdir / f"{name}.jsonl"
    server = start_server(
        name,
        [sys.executable, "-c", _RECORDER, str(port), str(status), str(log)],
        url=f"http://127.0.0.1:{port}",
        log_dir=workdir,
    )
    return RecordingSts(server, log)


@pytest.fixture
def recorders(tmp_path: Path) -> Iterator[tuple[RecordingSts, RecordingSts, RecordingSts]]:
    """The configured STS (answers 200), another endpoint (answers 200), and a refusing STS (403)."""
    started = [start_recorder(tmp_path, name, status) for name, status in (("sts", 200), ("other", 200), ("no", 403))]
    yield started[0], started[1], started[2]
    for recorder in started:
        recorder.server.stop()


def proof_for(url: str, binding: str = BINDING, credentials: ReadOnlyCredentials = TESTING) -> dict[str, Any]:
    return sign_caller_identity(credentials, endpoint=url, region="us-east-1", binding=binding)


def refusal(verifier: StsIdentityVerifier, proof: Any, binding: str = BINDING) -> IdentityError:
    with pytest.raises(IdentityError) as caught:
        verifier.verify(proof, binding=binding)
    return caught.value


# --------------------------------------------------------------------------------------------- moto's STS


@pytest.mark.stack
def test_moto_answers_with_the_arn_of_whoever_holds_the_credentials(moto_server: RunningServer) -> None:
    verifier = StsIdentityVerifier(moto_server.url)
    assert verifier.verify(proof_for(moto_server.url), binding=BINDING).arn == "arn:aws:sts::123456789012:user/moto"

    iam = boto3.client("iam")
    iam.create_user(UserName="alice")
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    alice = ReadOnlyCredentials(key["AccessKeyId"], key["SecretAccessKey"], None)

    caller = verifier.verify(proof_for(moto_server.url, credentials=alice), binding=BINDING)

    assert (caller.arn, caller.account) == ("arn:aws:iam::123456789012:user/alice", "123456789012")


@pytest.mark.stack
def test_a_proof_is_accepted_once_and_its_nonce_kept_a_little_over_the_freshness_window(
    moto_server: RunningServer,
) -> None:
    client: Any = boto3.client("dynamodb")  # table_definition is the untyped CreateTable arguments
    client.create_table(**table_definition("nonces"))
    ledger = Ledger("nonces")
    verifier = StsIdentityVerifier(
        moto_server.url, use_nonce=lambda nonce, expires_at: ledger.use_nonce(nonce, expires_at=expires_at)
    )
    proof = proof_for(moto_server.url)

    assert verifier.verify(proof, binding=BINDING).arn == "arn:aws:sts::123456789012:user/moto"
    for _ in range(2):  # the same proof, replayed
        error = refusal(verifier, proof)
        assert error.code == "identity_replayed" and "used before" in str(error)
    assert verifier.verify(proof_for(moto_server.url), binding=BINDING).arn  # a new proof has a new nonce

    nonce = proof["headers"][NONCE_HEADER]
    item = client.get_item(TableName="nonces", Key={"pk": {"S": nonce_partition(nonce)}, "sk": {"S": "NONCE"}})["Item"]
    signed_at = datetime.strptime(proof["headers"]["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert int(item["ttl"]["N"]) == int((signed_at + timedelta(minutes=20)).timestamp())


# --------------------------------------------------------------------------------------------- where it goes


@pytest.mark.stack
def test_the_proof_is_replayed_once_to_the_configured_endpoint_and_nowhere_else(
    recorders: tuple[RecordingSts, RecordingSts, RecordingSts],
) -> None:
    sts, other, _ = recorders
    verifier = StsIdentityVerifier(sts.url)

    caller = verifier.verify(proof_for(sts.url), binding=BINDING)

    assert caller.arn == "arn:aws:sts::111122223333:assumed-role/oncall/alice"
    [request] = sts.requests()
    assert (request["path"], request["body"]) == ("/", "Action=GetCallerIdentity&Version=2011-06-15")
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers[BINDING_HEADER.lower()] == BINDING
    assert headers["host"] == sts.url.removeprefix("http://")
    assert other.requests() == []


@pytest.mark.stack
def test_a_proof_signed_for_another_endpoint_is_refused_without_any_request(
    recorders: tuple[RecordingSts, RecordingSts, RecordingSts],
) -> None:
    sts, other, _ = recorders
    verifier = StsIdentityVerifier(sts.url)

    error = refusal(verifier, proof_for(other.url))

    assert error.code == "identity_invalid"
    assert f"signed for '{other.url.removeprefix('http://')}'" in str(error)
    assert sts.requests() == [] and other.requests() == []
    # A URL in the payload is not a field the proof may have: it is refused, not followed.
    assert refusal(verifier, {**proof_for(sts.url), "url": other.url}).code == "identity_invalid"
    assert other.requests() == []


@pytest.mark.stack
def test_sts_refusing_the_signature_is_a_refusal_naming_only_its_error_code(
    recorders: tuple[RecordingSts, RecordingSts, RecordingSts],
) -> None:
    _, _, refusing = recorders
    proof = proof_for(refusing.url)

    error = refusal(StsIdentityVerifier(refusing.url), proof)

    assert (error.code, str(error)) == ("identity_refused", "STS refused the identity proof (SignatureDoesNotMatch)")
    signature = proof["headers"]["Authorization"].rsplit("Signature=", 1)[1]
    assert signature not in str(error) and "Canonical" not in str(error)


def test_an_sts_that_does_not_answer_leaves_the_caller_unverified() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    error = refusal(StsIdentityVerifier(url, timeout_seconds=2), proof_for(url))

    assert error.code == "identity_unverifiable"


# --------------------------------------------------------------------------------------------- what is checked first


def test_what_a_proof_must_be_is_checked_before_any_request() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # never reached: each proof is refused before the replay
    verifier = StsIdentityVerifier(url)
    good = proof_for(url)
    headers = good["headers"]
    unsigned_binding = sign_caller_identity(TESTING, endpoint=url, region="us-east-1", binding=BINDING)
    unsigned_binding["headers"]["Authorization"] = unsigned_binding["headers"]["Authorization"].replace(
        ";x-tagrelay-request", ""
    )
    cases: dict[str, tuple[Any, str]] = {
        "no proof": (None, "carries no identity proof"),
        "not a mapping of strings": ({"headers": [], "body": good["body"]}, "must be an object"),
        "another STS action": ({**good, "body": "Action=AssumeRole&Version=2011-06-15"}, "GetCallerIdentity"),
        "another header": ({**good, "headers": {**headers, "X-Forwarded-Host": "evil"}}, "unexpected header"),
        "no date": ({**good, "headers": {k: v for k, v in headers.items() if k != "X-Amz-Date"}}, "lacks"),
        "not SigV4 for STS": (
            {**good, "headers": {**headers, "Authorization": headers["Authorization"].replace("/sts/", "/s3/")}},
            "not an STS SigV4 signature",
        ),
        "binding not signed": (unsigned_binding, "must sign"),
        "no nonce": ({**good, "headers": {k: v for k, v in headers.items() if k != NONCE_HEADER}}, "lacks"),
        "a nonce not made by the command": ({**good, "headers": {**headers, NONCE_HEADER: "1"}}, "32 hex digits"),
        "another request": (proof_for(url, binding="b" * 64), "made for another request"),
    }
    for case, (proof, message) in cases.items():
        error = refusal(verifier, proof)
        assert error.code == ("identity_missing" if proof is None else "identity_invalid"), case
        assert message in str(error), (case, str(error))


def test_a_proof_older_than_sts_accepts_or_dated_ahead_is_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proof = proof_for(url)
    later = datetime.now(UTC) + timedelta(minutes=16)
    earlier = datetime.now(UTC) - timedelta(minutes=6)

    assert "expired" in str(refusal(StsIdentityVerifier(url, clock=lambda: later), proof))
    assert "in the future" in str(refusal(StsIdentityVerifier(url, clock=lambda: earlier), proof))


def test_principals_match_exactly_by_prefix_or_as_the_sessions_of_a_role() -> None:
    session = "arn:aws:sts::123456789012:assumed-role/oncall/alice"
    assert principal_allowed(session, ["arn:aws:iam::123456789012:role/oncall"])
    assert principal_allowed(session, ["arn:aws:iam::123456789012:role/teams/ops/oncall"])  # STS drops the path
    assert principal_allowed(session, ["arn:aws:sts::123456789012:assumed-role/oncall/*"])
    assert principal_allowed("arn:aws:iam::123456789012:user/bob", ["arn:aws:iam::123456789012:user/bob"])
    assert not principal_allowed(session, ["arn:aws:iam::123456789012:role/on"])
    assert not principal_allowed(session, ["arn:aws:iam::999999999999:role/oncall"])
    assert not principal_allowed("arn:aws:iam::123456789012:user/bobby", ["arn:aws:iam::123456789012:user/bob"])
    assert not principal_allowed(session, [])
