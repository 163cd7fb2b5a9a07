"""A stand-in for Amazon ECR's control-plane API (AWS JSON 1.1), beside the Debian registry's data plane.

boto3's ECR client reaches it through ``AWS_ENDPOINT_URL_ECR`` (botocore's service-specific endpoint
variable), so the promoter's ECR adapter talks to it exactly as to ECR: ``POST /`` with
``X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Operation>`` and a JSON body, answers in JSON,
errors as ``{"__type": "<Exception>", "message": ...}`` with HTTP 400.

Why not moto's ECR (moto 5.2.5, ``moto/ecr/models.py``): it accepts exclusion filters that ECR refuses
(any characters, any length), applies them as Python regular expressions with ``re.match`` (so ``main``
also exempts ``mainline`` and ``sha256-*`` reads as "sha256" plus dashes), and keeps its own image store
apart from the registry the tests push to. Here:

* repositories: CreateRepository, DescribeRepositories, PutImageTagMutability, DeleteRepository, with
  ECR's validation (name grammar, the four mutability settings, 1-5 WILDCARD filters matching
  ``^[0-9a-zA-Z._*-]{1,128}$``, filters only and always with the ``*_WITH_EXCLUSION`` settings);
* images: DescribeImages and UpdateImageStorageClass over the images the Debian registry really holds
  (tags and digests read from it), with each image's ``imageStatus`` (ACTIVE, ARCHIVED) kept here;
* GetAuthorizationToken, for completeness (the local registry needs no credentials).

What it does not do: enforce immutability on pushes (the Debian registry accepts any push), scanning,
lifecycle, replication, IAM. Run: ``python -m devstack.ecr_standin --registry URL --port N``.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from devstack.http_server import LoopbackHandler
from devstack.process import RunningServer, free_port, start_server

TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
DEFAULT_ACCOUNT = "033691785857"
DEFAULT_REGION = "us-east-1"
MUTABILITY = ("MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")
_NAME = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_FILTER = re.compile(r"^[0-9a-zA-Z._*-]{1,128}$")
_MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)


class EcrError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class Repository:
    name: str
    created_at: float
    mutability: str = "MUTABLE"
    filters: list[dict[str, str]] = field(default_factory=list)
    archived: dict[str, float] = field(default_factory=dict)  # digest -> lastArchivedAt


class EcrStandin:
    """The state and the operations; ``serve(target, body)`` answers one API call."""

    def __init__(
        self,
        registry_url: str,
        *,
        account: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
        registry_data: Path | None = None,
    ) -> None:
        self.registry_url = registry_url.rstrip("/")
        # The registry's own storage (the filesystem driver's root): a tag's digest is one small file
        # there, so listing an image's tags costs no HTTP request per tag (a repository of a long test
        # holds hundreds). Without it, the registry's API is asked.
        self.registry_data = registry_data
        self.account = account
        self.region = region
        self.repositories: dict[str, Repository] = {}
        self.calls: list[dict[str, Any]] = []  # the request log: operation and repository names
        self._lock = threading.Lock()
        self._http = requests.Session()
        self._operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreateRepository": self.create_repository,
            "DescribeRepositories": self.describe_repositories,
            "PutImageTagMutability": self.put_image_tag_mutability,
            "DeleteRepository": self.delete_repository,
            "DescribeImages": self.describe_images,
            "UpdateImageStorageClass": self.update_image_storage_class,
            "GetAuthorizationToken": self.get_authorization_token,
        }

    def serve(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        handler = self._operations.get(operation)
        if handler is None:
            raise EcrError("UnknownOperationException", f"{operation} is not served by the ECR stand-in")
        with self._lock:
            self.calls.append({"operation": operation, "body": body})
            self._check_registry_id(body)
            return handler(body)

    # --- repositories ---

    def create_repository(self, body: dict[str, Any]) -> dict[str, Any]:
        name = _name(body)
        if name in self.repositories:
            raise EcrError(
                "RepositoryAlreadyExistsException",
                f"The repository with name '{name}' already exists in the registry with id '{self.account}'",
            )
        mutability, filters = _mutability(body, default="MUTABLE")
        repository = Repository(name, time.time(), mutability, filters)
        self.repositories[name] = repository
        return {"repository": self._describe(repository)}

    def describe_repositories(self, body: dict[str, Any]) -> dict[str, Any]:
        names = body.get("repositoryNames")
        if names is None:
            return {"repositories": [self._describe(r) for _, r in sorted(self.repositories.items())]}
        if not isinstance(names, list) or not 1 <= len(names) <= 100:
            raise EcrError("InvalidParameterException", "repositoryNames must list 1 to 100 repository names")
        return {"repositories": [self._describe(self._repository(name)) for name in names]}

    def put_image_tag_mutability(self, body: dict[str, Any]) -> dict[str, Any]:
        repository = self._repository(_name(body))
        if "imageTagMutability" not in body:
            raise EcrError("InvalidParameterException", "imageTagMutability is required")
        repository.mutability, repository.filters = _mutability(body, default="MUTABLE")
        answer: dict[str, Any] = {
            "registryId": self.account,
            "repositoryName": repository.name,
            "imageTagMutability": repository.mutability,
        }
        if repository.filters:
            answer["imageTagMutabilityExclusionFilters"] = repository.filters
        return answer

    def delete_repository(self, body: dict[str, Any]) -> dict[str, Any]:
        repository = self._repository(_name(body))
        del self.repositories[repository.name]
        return {"repository": self._describe(repository)}

    # --- images (read from the registry) ---

    def describe_images(self, body: dict[str, Any]) -> dict[str, Any]:
        repository = self._repository(_name(body))
        ids = body.get("imageIds")
        if ids is None:
            digests = sorted(set(self._tag_digests(repository.name).values()))
        else:
            digests = []
            for image_id in ids:
                digest = self._resolve(repository.name, image_id)
                if digest is None:
                    raise EcrError(
                        "ImageNotFoundException",
                        f"The image with imageId {json.dumps(image_id)} does not exist within the repository with "
                        f"name '{repository.name}' in the registry with id '{self.account}'",
                    )
                if digest not in digests:
                    digests.append(digest)
        wanted = (body.get("filter") or {}).get("imageStatus", "ACTIVE" if ids is None else "ANY")
        details = [self._image(repository, digest) for digest in digests]
        return {"imageDetails": [d for d in details if wanted == "ANY" or d["imageStatus"] == wanted]}

    def update_image_storage_class(self, body: dict[str, Any]) -> dict[str, Any]:
        repository = self._repository(_name(body))
        image_id = body.get("imageId") or {}
        digest = self._resolve(repository.name, image_id)
        if digest is None:
            raise EcrError("ImageNotFoundException", f"The image {json.dumps(image_id)} does not exist")
        target = body.get("targetStorageClass")
        if target == "ARCHIVE":
            repository.archived.setdefault(digest, time.time())
            status = "ARCHIVED"
        elif target == "STANDARD":
            # ECR restores asynchronously (ACTIVATING, then ACTIVE); the stand-in is ACTIVE at once.
            repository.archived.pop(digest, None)
            status = "ACTIVATING"
        else:
            raise EcrError("InvalidParameterException", "targetStorageClass must be ARCHIVE or STANDARD")
        return {
            "registryId": self.account,
            "repositoryName": repository.name,
            "imageId": {"imageDigest": digest},
            "imageStatus": status,
        }

    def get_authorization_token(self, body: dict[str, Any]) -> dict[str, Any]:
        token = base64.b64encode(b"AWS:local-ecr-standin").decode()
        return {
            "authorizationData": [
                {"authorizationToken": token, "expiresAt": time.time() + 12 * 3600, "proxyEndpoint": self.registry_url}
            ]
        }

    # --- helpers ---

    def _check_registry_id(self, body: dict[str, Any]) -> None:
        registry_id = body.get("registryId")
        if registry_id is not None and registry_id != self.account:
            raise EcrError(
                "RepositoryNotFoundException",
                f"The registry with id '{registry_id}' is not served here (the stand-in is account {self.account})",
            )

    def _repository(self, name: str) -> Repository:
        repository = self.repositories.get(name)
        if repository is None:
            raise EcrError(
                "RepositoryNotFoundException",
                f"The repository with name '{name}' does not exist in the registry with id '{self.account}'",
            )
        return repository

    def _describe(self, repository: Repository) -> dict[str, Any]:
        described: dict[str, Any] = {
            "repositoryArn": f"arn:aws:ecr:{self.region}:{self.account}:repository/{repository.name}",
            "registryId": self.account,
            "repositoryName": repository.name,
            "repositoryUri": f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{repository.name}",
            "createdAt": repository.created_at,
            "imageTagMutability": repository.mutability,
            "imageScanningConfiguration": {"scanOnPush": False},
            "encryptionConfiguration": {"encryptionType": "AES256"},
        }
        if repository.filters:
            described["imageTagMutabilityExclusionFilters"] = repository.filters
        return described

    def _image(self, repository: Repository, digest: str) -> dict[str, Any]:
        manifest = self._http.get(
            f"{self.registry_url}/v2/{repository.name}/manifests/{digest}",
            headers={"Accept": _MANIFEST_ACCEPT},
            timeout=5,
        )
        document = manifest.json() if manifest.ok else {}
        tags = [tag for tag, tagged in self._tag_digests(repository.name).items() if tagged == digest]
        detail: dict[str, Any] = {
            "registryId": self.account,
            "repositoryName": repository.name,
            "imageDigest": digest,
            "imageSizeInBytes": sum(int(layer.get("size", 0)) for layer in document.get("layers", [])),
            "imagePushedAt": repository.created_at,
            "imageManifestMediaType": manifest.headers.get("Content-Type", "").split(";")[0],
            "imageStatus": "ARCHIVED" if digest in repository.archived else "ACTIVE",
        }
        if tags:
            detail["imageTags"] = tags
        config = document.get("config") or {}
        if config.get("mediaType"):
            detail["artifactMediaType"] = document.get("artifactType") or config["mediaType"]
        if isinstance(document.get("subject"), dict):
            detail["subjectManifestDigest"] = document["subject"].get("digest")
        if digest in repository.archived:
            detail["lastArchivedAt"] = repository.archived[digest]
        return detail

    def _resolve(self, name: str, image_id: dict[str, Any]) -> str | None:
        digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
        if not digest and not tag:
            raise EcrError("InvalidParameterException", "an imageId needs an imageDigest or an imageTag")
        found = self._head(name, str(tag or digest))
        if found is None or (digest and found != digest):
            return None
        return found

    def _head(self, name: str, reference: str) -> str | None:
        response = self._http.head(
            f"{self.registry_url}/v2/{name}/manifests/{reference}", headers={"Accept": _MANIFEST_ACCEPT}, timeout=5
        )
        return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None

    def _tag_digests(self, name: str) -> dict[str, str]:
        """Every tag of the repository and the digest it points at, as the registry holds them."""
        if self.registry_data is not None:
            # distribution's filesystem layout: <root>/docker/registry/v2/repositories/<name>/_manifests/
            # tags/<tag>/current/link holds the tag's digest.
            tags_dir = self.registry_data / "docker/registry/v2/repositories" / name / "_manifests/tags"
            found = {}
            for link in sorted(tags_dir.glob("*/current/link")):
                digest = link.read_text().strip()
                if digest.startswith("sha256:"):
                    found[link.parent.parent.name] = digest
            return found
        pairs = ((tag, self._head(name, tag)) for tag in self._tags(name))
        return {tag: digest for tag, digest in pairs if digest}

    def _tags(self, name: str) -> list[str]:
        response = self._http.get(f"{self.registry_url}/v2/{name}/tags/list", timeout=5)
        return sorted(response.json().get("tags") or []) if response.status_code == 200 else []


def _name(body: dict[str, Any]) -> str:
    name = body.get("repositoryName")
    if not isinstance(name, str) or not 2 <= len(name) <= 256 or not _NAME.match(name):
        raise EcrError(
            "InvalidParameterException",
            f"Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular "
            f"expression '{_NAME.pattern}'' (got {name!r})",
        )
    return name


def _mutability(body: dict[str, Any], *, default: str) -> tuple[str, list[dict[str, str]]]:
    mutability = body.get("imageTagMutability", default)
    if mutability not in MUTABILITY:
        raise EcrError(
            "InvalidParameterException",
            f"Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must satisfy enum "
            f"value set: [{', '.join(MUTABILITY)}]'",
        )
    filters = body.get("imageTagMutabilityExclusionFilters")
    with_exclusion = mutability.endswith("_WITH_EXCLUSION")
    if filters is None:
        if with_exclusion:
            raise EcrError(
                "InvalidParameterException",
                f"imageTagMutabilityExclusionFilters can't be null when imageTagMutability is {mutability}",
            )
        return mutability, []
    if not with_exclusion:
        raise EcrError(
            "InvalidParameterException",
            f"imageTagMutabilityExclusionFilters can only be given with MUTABLE_WITH_EXCLUSION or "
            f"IMMUTABLE_WITH_EXCLUSION, not {mutability}",
        )
    if not isinstance(filters, list) or not 1 <= len(filters) <= 5:
        raise EcrError("InvalidParameterException", "imageTagMutabilityExclusionFilters must hold 1 to 5 filters")
    for entry in filters:
        if not isinstance(entry, dict) or set(entry) != {"filter", "filterType"}:
            raise EcrError("InvalidParameterException", "each exclusion filter needs exactly filter and filterType")
        if entry["filterType"] != "WILDCARD":
            raise EcrError("InvalidParameterException", f"filterType must be WILDCARD, got {entry['filterType']!r}")
        if not isinstance(entry["filter"], str) or not _FILTER.match(entry["filter"]):
            raise EcrError(
                "InvalidParameterException",
                f"Invalid parameter at 'filter' failed to satisfy constraint: 'Member must satisfy regular "
                f"expression pattern: {_FILTER.pattern}' (got {entry['filter']!r})",
            )
    return mutability, [{"filterType": "WILDCARD", "filter": entry["filter"]} for entry in filters]


def make_handler(standin: EcrStandin) -> type[LoopbackHandler]:
    class Handler(LoopbackHandler):
        def _serve(self) -> None:
            if self.path.startswith("/_standin/calls"):
                self._reply(200, {"calls": standin.calls})
                if self.command == "DELETE":
                    standin.calls.clear()
                return
            target = self.headers.get("X-Amz-Target", "")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            if self.command != "POST" or not target.startswith(TARGET_PREFIX):
                self._reply(404, {"__type": "UnknownOperationException", "message": "not an ECR API call"})
                return
            try:
                body = json.loads(raw or b"{}")
                self._reply(200, standin.serve(target.removeprefix(TARGET_PREFIX), body))
            except EcrError as error:
                self._reply(400, {"__type": error.kind, "message": error.message})
            except ValueError:
                self._reply(400, {"__type": "SerializationException", "message": "the body is not JSON"})

        def _reply(self, status: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def start_ecr_standin(
    registry_url: str,
    workdir: Path,
    *,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
    registry_data: Path | None = None,
) -> RunningServer:
    """The stand-in as a child process on a free loopback port (stop it by pid). ``registry_data``: the
    local registry's storage root, read for its tags instead of asking its API once per tag."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "devstack.ecr_standin",
        "--registry",
        registry_url,
        "--port",
        str(port),
        "--account",
        account,
        "--region",
        region,
    ]
    if registry_data is not None:
        argv += ["--registry-data", str(registry_data)]
    server = start_server(
        "ecr",
        argv,
        url=f"http://127.0.0.1:{port}",
        ready_path="/_standin/calls",
        log_dir=workdir / "ecr",
        cwd=Path(__file__).resolve().parent.parent,
        is_ready=lambda response: response.status_code == 200,
    )
    server.extra.update(account=account, region=region)
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", required=True, help="the registry's URL, e.g. http://127.0.0.1:5000")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--account", default=DEFAULT_ACCOUNT)
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--registry-data", type=Path, help="the registry's filesystem storage root, to read tags from")
    args = parser.parse_args(argv)
    standin = EcrStandin(args.registry, account=args.account, region=args.region, registry_data=args.registry_data)
    ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(standin)).serve_forever()


if __name__ == "__main__":
    main()
