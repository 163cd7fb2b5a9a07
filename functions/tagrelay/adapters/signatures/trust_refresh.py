"""Refresh a pinned trusted root through a Sigstore TUF repository (``tagrelay trust-root refresh``).

Sigstore publishes its trusted_root.json through TUF (The Update Framework): the client starts from a
TUF root it already trusts (the pinned ``root.json``), follows the repository's signed root rotations,
and downloads the target only if the signed metadata vouches for its hash. That is python-tuf's
``Updater``; this module runs it in a scratch directory and then replaces the pinned files, so that
verification itself never needs the network.

Run on a workstation or in CI, not in Lambda: the result is meant to be reviewed and committed (or
shipped with the configuration), like a dependency update.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tagrelay.adapters.signatures.trust import TrustedRoot, parse_trusted_root
from tagrelay.errors import RefreshError

TRUSTED_ROOT_TARGET = "trusted_root.json"


@dataclass(frozen=True)
class RefreshResult:
    trusted_root: Path
    tuf_root: Path
    changed: bool
    root: TrustedRoot
    tuf_root_version: int


def refresh_trusted_root(*, tuf_url: str, directory: Path, bootstrap_root: Path | None = None) -> RefreshResult:
    """Update ``directory/trusted_root.json`` (and ``directory/root.json``) from the TUF repository.

    ``bootstrap_root``: the TUF root to start from; default ``directory/root.json``. The files are only
    replaced when the download verified and the new trusted root parses.
    """
    # python-tuf comes with sigstore; imported here so that only this command loads it.
    from tuf.api.exceptions import DownloadError, RepositoryError
    from tuf.ngclient.updater import Updater

    start = bootstrap_root or directory / "root.json"
    try:
        bootstrap = start.read_bytes()
    except OSError as exc:
        raise RefreshError(f"cannot read the TUF root to start from, {start} ({exc.strerror})") from None
    url = tuf_url.rstrip("/")
    with tempfile.TemporaryDirectory(prefix="tagrelay-tuf-") as scratch:
        metadata_dir, targets_dir = Path(scratch, "metadata"), Path(scratch, "targets")
        metadata_dir.mkdir()
        targets_dir.mkdir()
        try:
            updater = Updater(
                metadata_dir=str(metadata_dir),
                metadata_base_url=url,
                target_base_url=f"{url}/targets/",
                target_dir=str(targets_dir),
                bootstrap=bootstrap,
            )
            updater.config.app_user_agent = "tagrelay trust-root refresh"
            updater.refresh()
            info = updater.get_targetinfo(TRUSTED_ROOT_TARGET)
            if info is None:
                raise RefreshError(f"{url} publishes no {TRUSTED_ROOT_TARGET} target")
            data = Path(updater.download_target(info)).read_bytes()
        except (RepositoryError, DownloadError, OSError, ValueError) as exc:
            raise RefreshError(f"the TUF repository {url} did not verify or answer: {exc}") from None
        new_tuf_root = (metadata_dir / "root.json").read_bytes()
    destination = directory / TRUSTED_ROOT_TARGET
    root = parse_trusted_root(data, source=f"{TRUSTED_ROOT_TARGET} from {url}", path=destination)
    previous = destination.read_bytes() if destination.exists() else None
    directory.mkdir(parents=True, exist_ok=True)
    _replace(destination, data)
    _replace(directory / "root.json", new_tuf_root)
    version = int(json.loads(new_tuf_root)["signed"]["version"])
    return RefreshResult(
        trusted_root=destination,
        tuf_root=directory / "root.json",
        changed=previous != data,
        root=root,
        tuf_root_version=version,
    )


def _replace(path: Path, data: bytes) -> None:
    """Write next to the file, then rename: a reader never sees half a trusted root."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "wb") as file:
        file.write(data)
    Path(temporary).replace(path)
