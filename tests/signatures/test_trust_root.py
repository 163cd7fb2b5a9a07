"""Trusted roots: the pinned public-good root, custom roots, and `tagrelay trust-root refresh` against a
local TUF repository (python-tuf's metadata API signs it; a plain HTTP server on loopback serves it)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

# Both packages re-export these names without __all__, which mypy --strict does not take as public.
from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]
from tuf.api.metadata import (  # type: ignore[attr-defined]
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from devstack.process import RunningServer, free_port, start_server
from devstack.sigstore_testing import TestSigstore
from tagrelay.adapters.signatures.trust import PUBLIC_GOOD_TRUSTED_ROOT, load_trusted_root, trusted_root_for
from tagrelay.adapters.signatures.verifier import keyless_policy
from tagrelay.cli.main import main
from tagrelay.config import KeylessSignature
from tagrelay.errors import MisconfiguredError

ISSUER = "https://token.actions.githubusercontent.com"


def test_pinned_public_good_root_is_the_default() -> None:
    root = trusted_root_for(None)
    assert root.path == PUBLIC_GOOD_TRUSTED_ROOT
    # Rekor's public-good log id (Rekor's public-good instance, in the pinned trusted_root.json) and Fulcio's current CA.
    assert bytes.fromhex("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d") in root.tlogs
    assert any(
        ca.uri == "https://fulcio.sigstore.dev" and ca.validity.end is None for ca in root.certificate_authorities
    )
    assert len(root.ctlogs) >= 1


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not json", "is not JSON"),
        (b'{"mediaType": "application/json"}', "is not a Sigstore trusted root"),
        (
            b'{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": []}',
            "names no Fulcio certificate authority or no Rekor log",
        ),
    ],
)
def test_a_bad_custom_root_fails_when_the_verifier_is_built(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "trusted_root.json"
    path.write_bytes(content)
    with pytest.raises(MisconfiguredError, match=problem):
        keyless_policy(KeylessSignature(issuer=ISSUER, identity="x", trusted_root=str(path)))


def test_a_missing_custom_root_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(MisconfiguredError, match=r"signature\.keyless\.trusted_root"):
        keyless_policy(KeylessSignature(issuer=ISSUER, identity="x", trusted_root=str(tmp_path / "absent.json")))


# --- refresh through TUF ----------------------------------------------------------------------------


@dataclass
class TufRepository:
    """A TUF repository on disk (non-consistent snapshots), with one target: trusted_root.json."""

    directory: Path
    signer: CryptoSigner
    root: Metadata[Root]
    version: int = 1

    @classmethod
    def create(cls, directory: Path) -> TufRepository:
        signer = CryptoSigner.generate_ed25519()
        root = Metadata(Root(expires=_in_days(365), consistent_snapshot=False))
        for role in ("root", "targets", "snapshot", "timestamp"):
            root.signed.add_key(signer.public_key, role)
        repository = cls(directory=directory, signer=signer, root=root)
        (directory / "targets").mkdir(parents=True)
        repository._write("1.root.json", root)
        return repository

    def publish(self, trusted_root: bytes) -> None:
        self.version += 1
        (self.directory / "targets" / "trusted_root.json").write_bytes(trusted_root)
        targets = Metadata(Targets(version=self.version, expires=_in_days(30)))
        targets.signed.targets["trusted_root.json"] = TargetFile.from_data("trusted_root.json", trusted_root)
        self._write("targets.json", targets)
        snapshot = Metadata(Snapshot(version=self.version, expires=_in_days(7)))
        snapshot.signed.meta["targets.json"] = MetaFile(version=self.version)
        self._write("snapshot.json", snapshot)
        timestamp = Metadata(Timestamp(version=self.version, expires=_in_days(1)))
        timestamp.signed.snapshot_meta = MetaFile(version=self.version)
        self._write("timestamp.json", timestamp)

    def _write(self, name: str, metadata: Metadata) -> None:  # type: ignore[type-arg]
        metadata.sign(self.signer)
        (self.directory / name).write_bytes(metadata.to_bytes(JSONSerializer(compact=False)))


def _in_days(days: int) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


@pytest.fixture(scope="module")
def tuf_repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TufRepository, RunningServer]]:
    directory = tmp_path_factory.mktemp("tuf") / "repository"
    directory.mkdir()
    repository = TufRepository.create(directory)
    port = free_port()
    server = start_server(
        "tuf-repository",
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(directory)],
        url=f"http://127.0.0.1:{port}",
        ready_path="/1.root.json",
        log_dir=directory.parent,
        is_ready=lambda response: response.status_code == 200,
    )
    yield repository, server
    server.stop()


def test_refresh_replaces_the_pinned_root_with_the_verified_target(
    tuf_repository: tuple[TufRepository, RunningServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repository, server = tuf_repository
    new_root = TestSigstore.generate("refreshed").trusted_root()
    repository.publish(json.dumps(new_root).encode())
    pinned = tmp_path / "public-good"
    pinned.mkdir()
    (pinned / "root.json").write_bytes((repository.directory / "1.root.json").read_bytes())
    (pinned / "trusted_root.json").write_bytes(PUBLIC_GOOD_TRUSTED_ROOT.read_bytes())

    argv = ["trust-root", "refresh", "--tuf-url", server.url, "--dir", str(pinned), "-o", "json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["changed"] is True
    assert [ca["uri"] for ca in first["certificate_authorities"]] == ["https://fulcio.refreshed.test"]
    assert json.loads((pinned / "trusted_root.json").read_bytes()) == new_root
    assert load_trusted_root(str(pinned / "trusted_root.json"), source="test").tlogs

    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False


def test_refresh_refuses_a_target_the_metadata_does_not_vouch_for(
    tuf_repository: tuple[TufRepository, RunningServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repository, server = tuf_repository
    repository.publish(json.dumps(TestSigstore.generate("signed").trusted_root()).encode())
    # Someone swaps the file on the mirror after the metadata was signed.
    (repository.directory / "targets" / "trusted_root.json").write_text(
        json.dumps(TestSigstore.generate("swapped").trusted_root())
    )
    pinned = tmp_path / "public-good"
    pinned.mkdir()
    (pinned / "root.json").write_bytes((repository.directory / "1.root.json").read_bytes())
    before = PUBLIC_GOOD_TRUSTED_ROOT.read_bytes()
    (pinned / "trusted_root.json").write_bytes(before)

    assert main(["trust-root", "refresh", "--tuf-url", server.url, "--dir", str(pinned)]) == 1
    assert "trusted root not refreshed" in capsys.readouterr().err
    assert (pinned / "trusted_root.json").read_bytes() == before


def test_show_describes_a_trusted_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = TestSigstore.generate("shown").write_trusted_root(tmp_path / "trusted_root.json")
    assert main(["trust-root", "show", "--file", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Fulcio CA  https://fulcio.shown.test" in out
    assert "Rekor      https://rekor.shown.test" in out
