"""Lambda packaging without Docker: the locked runtime dependencies for Lambda's platform, the code, the config.

CDK calls `LocalUvBundling.try_bundle` during synth. It exports the project's runtime dependencies from
uv.lock (no dev or cdk group, so no CDK and no test libraries reach the asset), installs binary wheels for
the Lambda's CPU and Python version with uv's pip interface (the uv-managed venv has no pip; uv is what
`scripts/bootstrap` installs), checks every wheel against the lock's hashes, then copies the `tagrelay`
package and the configuration file. Nothing is compiled and no container is started.

Asset layout (Lambda's task root, /var/task)::

    tagrelay/            the functions' package (handlers are tagrelay.handlers.<name>.handler)
    tagrelay.yaml        the configuration file the stack was built from (TAGRELAY_CONFIG points here)
    <dependencies>/      boto3, aws_lambda_powertools, github, ruamel, sigstore, ...
    <files the configuration names (public_key_file, ...), at the same paths relative to /var/task>
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from tagrelay.config import Config
from tagrelay.deployment import check_packageable, referenced_files

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_ROOT = REPO_ROOT / "functions"
PACKAGE = "tagrelay"
LAMBDA_TASK_ROOT = "/var/task"
CONFIG_FILE_IN_ASSET = "tagrelay.yaml"
# Bump when the asset layout changes, so that CDK does not reuse a bundle made the old way.
BUNDLE_FORMAT = "2"
# Locked runtime dependencies the functions never import, left out of the asset (the `tagrelay` CLI
# keeps them): sigstore declares rich for its own command line, and sigstore-rekor-types pydantic's
# email extra, which only an EmailStr field would load. (sigstore's OIDC package `id` looks CLI-only
# too, but sigstore.models imports it through the Fulcio client.) tests/cdk/test_asset.py builds the
# asset and runs the handlers and the verification modules from it alone, and checks that none of
# these is imported.
CLI_ONLY_PACKAGES: dict[str, str] = {
    "rich": "sigstore's command-line output (sigstore/_cli.py, sigstore/oidc.py)",
    "markdown-it-py": "a dependency of rich",
    "mdurl": "a dependency of markdown-it-py",
    "pygments": "a dependency of rich (syntax highlighting)",
    "email-validator": "pydantic's EmailStr, which no model the functions load uses (extra of sigstore-rekor-types)",
    "dnspython": "a dependency of email-validator",
}
# Inside the tagrelay package: the `tagrelay` command, which no handler imports.
CLI_ONLY_MODULES = ("cli",)

Architecture = Literal["arm64", "x86_64"]
# uv's --python-platform names for Lambda's Amazon Linux 2023 (glibc 2.34 >= manylinux2014's 2.17).
_UV_PLATFORM: dict[Architecture, str] = {"arm64": "aarch64-manylinux2014", "x86_64": "x86_64-manylinux2014"}
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


class BundlingError(RuntimeError):
    """The Lambda asset could not be built; the message says which step failed and how to fix it."""


@dataclass(frozen=True)
class BundleInputs:
    """Everything besides functions/ that decides the asset's content."""

    config_file: Path
    # Files the configuration names (key files, trusted roots, CA bundles). The functions resolve them
    # against their working directory (/var/task in Lambda), so they are read relative to the directory
    # the app is synthesized from (the repository root) and copied to the same relative path.
    referenced_files: tuple[str, ...]
    files_root: Path
    architecture: Architecture
    python_version: str  # "3.13"

    def digest(self) -> str:
        """The asset's hash: everything that goes into the bundle, and nothing specific to this machine.

        The wheels are pinned by hash in uv.lock, so equal inputs always give an equal bundle. Knowing the
        hash before bundling lets CDK reuse a bundle already in cdk.out instead of rebuilding it on every
        synth, and a checkout elsewhere (CI) gets the same hash, so nothing redeploys without a change.
        """
        sha = hashlib.sha256()

        def add(name: str, content: bytes) -> None:
            sha.update(f"{name}\0{len(content)}\0".encode() + content)

        add("format", BUNDLE_FORMAT.encode())
        add("platform", f"{self.architecture} python{self.python_version}".encode())
        add("bundler", Path(__file__).read_bytes())
        for name in ("uv.lock", "pyproject.toml"):
            add(name, (REPO_ROOT / name).read_bytes())
        package = FUNCTIONS_ROOT / PACKAGE
        cli_only = {package / name for name in CLI_ONLY_MODULES}
        for path in sorted(package.rglob("*")):
            if cli_only & set(path.parents):
                continue
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                add(path.relative_to(FUNCTIONS_ROOT).as_posix(), path.read_bytes())
        add(CONFIG_FILE_IN_ASSET, self.config_file.read_bytes())
        for relative in self.referenced_files:
            add(relative, (self.files_root / relative).read_bytes())
        return sha.hexdigest()


def bundle_inputs(config: Config, config_file: Path, python_version: str) -> BundleInputs:
    files_root = Path.cwd()
    return BundleInputs(
        config_file=config_file.resolve(),
        referenced_files=tuple(_referenced_files(config, files_root)),
        files_root=files_root,
        architecture=config.deploy.architecture,
        python_version=python_version,
    )


def _referenced_files(config: Config, files_root: Path) -> Iterator[str]:
    """Local files named by the configuration; the functions need them at the same relative path."""
    for field, value in referenced_files(config):
        if problem := check_packageable(field, value, files_root):
            raise BundlingError(problem)
        yield value


@jsii.implements(cdk.ILocalBundling)
class LocalUvBundling:
    """CDK's local bundling hook: builds the asset on this machine instead of in a Docker container."""

    def __init__(self, inputs: BundleInputs) -> None:
        self.inputs = inputs

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_options: object) -> bool:
        target = Path(output_dir)
        install_dependencies(target, self.inputs.architecture, self.inputs.python_version)
        copy_package(target)
        shutil.copyfile(self.inputs.config_file, target / CONFIG_FILE_IN_ASSET)
        for relative in self.inputs.referenced_files:
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.inputs.files_root / relative, destination)
        return True


def install_dependencies(
    target: Path, architecture: Architecture, python_version: str, *, cli_only: bool = False
) -> None:
    """The runtime dependencies as binary wheels for Lambda's CPU and Python, checked against uv.lock's hashes."""
    with tempfile.TemporaryDirectory(prefix="tagrelay-bundle-") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        export_runtime_requirements(requirements, cli_only=cli_only)
        # --link-mode copy: uv would otherwise hard-link the files of its cache into cdk.out.
        _run(
            [_uv(), "pip", "install", "--quiet", "--target", str(target),
             "--python-platform", _UV_PLATFORM[architecture],
             "--python-version", python_version,
             "--only-binary", ":all:", "--no-deps", "--require-hashes",
             "--no-installer-metadata", "--no-compile-bytecode", "--link-mode", "copy",
             "--requirement", str(requirements)],
            step=f"install the dependencies for Lambda ({architecture}, Python {python_version})",
        )  # fmt: skip
    # Console scripts carry this machine's interpreter path in their shebang; Lambda never runs them.
    shutil.rmtree(target / "bin", ignore_errors=True)


def copy_package(target: Path) -> None:
    """The `tagrelay` package, without its CLI-only modules."""
    shutil.copytree(FUNCTIONS_ROOT / PACKAGE, target / PACKAGE, ignore=_package_ignore, dirs_exist_ok=True)


def _package_ignore(directory: str, names: list[str]) -> set[str]:
    """The package's files, without its CLI-only modules (only at the package's top level)."""
    ignored = set(_COPY_IGNORE(directory, names))
    if Path(directory) == FUNCTIONS_ROOT / PACKAGE:
        ignored |= {name for name in names if name in CLI_ONLY_MODULES}
    return ignored


def lambda_code(inputs: BundleInputs) -> lambda_.Code:
    """The functions' code asset, bundled locally (see BundleInputs.digest for its hash)."""
    return lambda_.Code.from_asset(
        str(FUNCTIONS_ROOT),
        exclude=["**/__pycache__", "**/*.pyc"],
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=inputs.digest(),
        bundling=cdk.BundlingOptions(
            # Required by the API, never pulled: local bundling always succeeds or raises.
            image=cdk.DockerImage.from_registry(f"public.ecr.aws/sam/build-python{inputs.python_version}"),
            local=LocalUvBundling(inputs),
        ),
    )


def export_runtime_requirements(output: Path, *, cli_only: bool = False) -> None:
    """The locked runtime dependencies the functions use (no dev or cdk group, no CLI-only package),
    pinned and with their hashes. ``cli_only`` keeps the CLI-only packages (for comparisons)."""
    excluded = [] if cli_only else [arg for name in sorted(CLI_ONLY_PACKAGES) for arg in ("--no-emit-package", name)]
    _run(
        [_uv(), "export", "--frozen", "--no-dev", "--no-group", "cdk", "--no-emit-project", "--quiet",
         *excluded, "--output-file", str(output)],
        step="export the runtime dependencies from uv.lock",
    )  # fmt: skip


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        raise BundlingError("uv is not on PATH; run `make bootstrap` (it installs uv) and synthesize again")
    return uv


def _run(command: list[str], *, step: str) -> None:
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BundlingError(f"could not {step} (exit {result.returncode}):\n{result.stderr.strip()}")
