"""`tagrelay verify IMAGE_REF`: check an image's signatures exactly as the promoter would, and say why."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from tagrelay.cli.common import (
    CommandError,
    add_config_option,
    add_output_option,
    load_config_or_fail,
    new_parser,
    print_json,
)
from tagrelay.domain.tags import is_digest

if TYPE_CHECKING:
    from tagrelay.config import App, Config
    from tagrelay.domain.facts import ReleaseContext, SignatureVerdict
    from tagrelay.ports import ImageRegistry

DESCRIPTION = """\
Verify the signatures of one image with the app's signature policy from the configuration, as the
promoter does before a commit: cosign's legacy .sig layout and cosign v3 bundles (OCI 1.1 referrers),
key pairs or keyless (Fulcio certificate, Rekor, identity policy). Prints the verdict and every check
of every signature examined: the verified identity (subject, issuer, repository, ref, commit), or the
first check that failed and why.

A keyless signature is bound to the commit its release tag names, so name the image by tag (or give
--sha with a digest). The {branch}/{env} placeholders of the identity policy are filled in for --env;
without it, for the environment of an env-prefixed tag, else for the environments whose branch tag
points at the same digest (as the promoter resolves them).

Exit status: 0 verified (or signature: none); 1 not verified (no signature, an invalid one, or no such
image); 2 usage or configuration error (a bad IMAGE_REF, an image no app lists, a keyless policy with
{branch}/{env} and no environment to fill them in, credentials the registry or KMS refuses); 3 the
registry or KMS could not be reached (try again). With --output json, errors are printed as
{"error": {"message": ..., "exit_code": ...}}. Nothing is written; only the registry is contacted.
"""
EXIT_NOT_VERIFIED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

EXAMPLE = """\
  tagrelay verify 033691785857.dkr.ecr.us-east-1.amazonaws.com/mosaic-life/web:1e07581 --config tagrelay.yaml
  tagrelay verify 127.0.0.1:5000/mosaic-life/web:1e07581 --env staging -o json | jq .identity
  tagrelay verify 127.0.0.1:5000/mosaic-life/web@sha256:9a9d... --sha 1e07581 --env prod
"""

_MARK = {"pass": "ok  ", "fail": "FAIL", "skip": "skip"}


@dataclass(frozen=True)
class ImageRef:
    """``host[:port]/repository[:tag][@digest]`` (a leading http:// or https:// is allowed)."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None


def parse_image_ref(text: str) -> ImageRef:
    """Split an image reference; raises CommandError naming what is missing."""
    rest = text.split("://", 1)[1] if "://" in text else text
    digest = None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not is_digest(digest):
            raise CommandError(f"{text}: {digest!r} is not a sha256 digest", exit_code=EXIT_USAGE)
    host, slash, path = rest.partition("/")
    if not slash or not path or not ("." in host or ":" in host or host == "localhost"):
        raise CommandError(f"{text}: give the registry too, as REGISTRY/REPOSITORY:TAG or @sha256:…", exit_code=2)
    tag = None
    name, colon, maybe_tag = path.rpartition(":")
    if colon and "/" not in maybe_tag:
        path, tag = name, maybe_tag
    if tag is None and digest is None:
        raise CommandError(f"{text}: name a tag (REPOSITORY:TAG) or a digest (REPOSITORY@sha256:…)", exit_code=2)
    return ImageRef(registry=host, repository=path, tag=tag, digest=digest)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = new_parser(
        subparsers,
        "verify",
        summary="verify an image's signatures with the app's policy, check by check",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    parser.add_argument(
        "image_ref", metavar="IMAGE_REF", help="REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@sha256:…"
    )
    parser.add_argument("--env", metavar="ENV", help="the environment whose policy placeholders apply")
    parser.add_argument("--sha", metavar="SHA", help="the release's short SHA, when IMAGE_REF names a digest")
    add_config_option(parser)
    add_output_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    ref = parse_image_ref(args.image_ref)
    config = load_config_or_fail(args.config)
    app_name, app = _app_for(config, ref)

    from tagrelay import runtime
    from tagrelay.errors import MisconfiguredError, TransientError

    try:
        registry = runtime.registry(config, app)
        digest, release = _release(app, registry, ref, env=args.env, sha=args.sha)
        verdict = runtime.verifier(config, app).verify(registry, ref.repository, digest, release=release)
    except MisconfiguredError as exc:
        raise CommandError(f"could not verify {args.image_ref}: {exc}", EXIT_USAGE) from None
    except TransientError as exc:
        raise CommandError(f"could not verify {args.image_ref} now: {exc}; try again", EXIT_UNREACHABLE) from None
    result = _result(app_name, ref, digest, release, verdict)
    if args.output == "json":
        print_json(result)
    else:
        _print_text(result)
    return 0 if verdict.acceptable else EXIT_NOT_VERIFIED


def _app_for(config: Config, ref: ImageRef) -> tuple[str, App]:
    found = config.app_for_repository(ref.repository)
    if found is None:
        raise CommandError(f"no app of the configuration lists the image {ref.repository}", exit_code=2)
    name, app = found
    if app.registry_host != ref.registry:
        raise CommandError(
            f"app {name} reads {ref.repository} from {app.registry_host}, not from {ref.registry}", exit_code=2
        )
    return found


def _release(
    app: App, registry: ImageRegistry, ref: ImageRef, *, env: str | None, sha: str | None
) -> tuple[str, ReleaseContext]:
    from tagrelay.domain.facts import ReleaseContext
    from tagrelay.domain.tags import parse_release_tag

    release_tag = parse_release_tag(ref.tag, app.tag_regex) if ref.tag else None
    if ref.tag and release_tag is None and sha is None:
        raise CommandError(f"tag {ref.tag} is not a release tag of this app ({app.tag_pattern})", exit_code=2)
    digest = ref.digest
    if digest is None:
        assert ref.tag is not None  # parse_image_ref guarantees a tag or a digest
        digest = registry.resolve_tag(ref.repository, ref.tag)
        if digest is None:
            raise CommandError(f"{ref.registry}/{ref.repository}:{ref.tag} does not exist")
    if env is not None and env not in app.environments:
        raise CommandError(f"--env {env}: the app's environments are {', '.join(app.environments)}", exit_code=2)
    envs = [env] if env else [release_tag.env] if release_tag and release_tag.env else None
    if envs is None:
        if len(app.environments) == 1:
            envs = list(app.environments)
        else:
            first = app.images[0]
            envs = [name for name, e in app.environments.items() if registry.resolve_tag(first, e.branch) == digest]
    if not envs and _policy_needs_environment(app):
        raise CommandError(
            f"{ref.registry}/{ref.repository}: the app's keyless identity policy uses {{branch}}/{{env}}, and no "
            f"environment's branch tag points at this digest; name one with --env ({', '.join(app.environments)})",
            EXIT_USAGE,
        )
    sha = sha or (release_tag.sha if release_tag else None)
    return digest, ReleaseContext.for_release(app, sha, envs)


def _policy_needs_environment(app: App) -> bool:
    if app.signature == "none" or app.signature.keyless is None:
        return False
    keyless = app.signature.keyless
    fields = (keyless.issuer, keyless.identity, keyless.identity_regexp, keyless.repository, keyless.ref)
    return any(value and ("{branch}" in value or "{env}" in value) for value in (*fields, keyless.trigger))


def _result(
    app_name: str, ref: ImageRef, digest: str, release: ReleaseContext, verdict: SignatureVerdict
) -> dict[str, Any]:
    return {
        "verdict": verdict.status,
        "image": f"{ref.registry}/{ref.repository}@{digest}",
        "app": app_name,
        "tag": ref.tag,
        "sha": release.sha,
        "environments": [e.name for e in release.environments],
        "signer": verdict.signer,
        "identity": asdict(verdict.identity) if verdict.identity else None,
        "reason": verdict.reason,
        "signatures": [
            {
                "origin": examined.origin,
                "accepted": examined.accepted,
                "reason": examined.reason or None,
                "checks": [asdict(check) for check in examined.checks],
            }
            for examined in verdict.examined
        ],
    }


def _print_text(result: dict[str, Any]) -> None:
    envs = ", ".join(result["environments"]) or "none"
    print(f"{result['verdict'].upper()}: {result['image']}")
    print(f"  app {result['app']}, tag {result['tag'] or '-'}, sha {result['sha'] or '-'}, environments {envs}")
    if result["identity"]:
        print("identity:")
        for name in ("subject", "issuer", "repository", "ref", "commit", "trigger", "workflow"):
            if result["identity"].get(name):
                print(f"  {name + ':':<12}{result['identity'][name]}")
    elif result["signer"]:
        print(f"signer: {result['signer']}")
    if result["reason"]:
        print(f"reason: {result['reason']}")
    for signature in result["signatures"]:
        status = "accepted" if signature["accepted"] else "rejected"
        print(f"\n{signature['origin']}: {status}")
        for check in signature["checks"]:
            print(f"  {_MARK[check['status']]}  {check['name']:<17} {check['detail']}")
