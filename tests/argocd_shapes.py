"""Hold Argo CD-shaped JSON to Argo CD's own data: its CRD schema and documents taken from its sources.

``tests/testdata/argocd/`` holds Application documents and API error bodies captured from
argoproj/argo-cd v3.5.1 (its README says which file and code each one comes from) and the
Application CRD's schema. The simulator's output is checked against them here, so that it answers
as Argo CD does rather than as the tracker expects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "testdata" / "argocd"
SCHEMA_FILE = "application-crd-schema.json"
_SHA = re.compile(r"^[0-9a-f]{40}$")


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return document


@cache
def application_schema() -> dict[str, Any]:
    return fixture(SCHEMA_FILE)


def argo_shaped(document: Mapping[str, Any]) -> list[str]:
    """What makes ``document`` unlike an Application Argo CD would serve (empty when it is alike):
    violations of the CRD's schema (types, enums, required keys), keys the CRD does not declare, and
    nulls (Go's ``omitempty`` leaves keys out instead)."""
    from jsonschema import Draft7Validator

    schema = application_schema()
    problems = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in Draft7Validator(schema).iter_errors(document)
    ]
    problems += [f"{path}: not declared by the CRD" for path in _undeclared(document, schema, "")]
    problems += [f"{path}: null" for path in _nulls(document, "")]
    return problems


def case_of(document: Mapping[str, Any], *facets: str) -> dict[str, Any]:
    """What kind of situation an Application shows, in terms that do not depend on names or times.

    Facets: ``operation`` (phase, message kind, finishedAt/syncResult presence, retries, initiator,
    strategy, auto-sync), ``sync`` (status, whether revisions are commits or names) and
    ``conditions`` (types and message kinds). Default: all three.
    """
    status = document.get("status") or {}
    spec = document.get("spec") or {}
    facets = facets or ("operation", "sync", "conditions")
    case: dict[str, Any] = {}
    if "operation" in facets:
        op = status.get("operationState") or {}
        initiated = (op.get("operation") or {}).get("initiatedBy") or {}
        case["operation"] = {
            "phase": op.get("phase"),
            "message": _message_kind(op.get("message") or ""),
            "finishedAt": "finishedAt" in op,
            "syncResult": "syncResult" in op,
            "retried": bool(op.get("retryCount")),
            "initiatedBy": "user"
            if initiated.get("username")
            else ("automated" if initiated.get("automated") else None),
            "syncStrategy": sorted(((op.get("operation") or {}).get("sync") or {}).get("syncStrategy") or {}),
            "autoSync": "automated" in (spec.get("syncPolicy") or {}),
        }
    if "sync" in facets:
        sync = status.get("sync") or {}
        revisions = [r for r in [*(sync.get("revisions") or []), sync.get("revision")] if r]
        kinds = {"commit" if _SHA.match(r) else "name" for r in revisions}
        case["sync"] = {"status": sync.get("status"), "revisions": sorted(kinds)}
    if "conditions" in facets:
        case["conditions"] = sorted(
            (c.get("type"), _condition_kind(c.get("message") or "")) for c in status.get("conditions") or []
        )
    return case


def _message_kind(message: str) -> str:
    if re.search(r"\. Retrying attempt #\d+ at \d{1,2}:\d{2}[AP]M\.$", message):
        return "retry scheduled"
    if re.fullmatch(r"Retrying operation(?: with latest revisions)?\. Attempt #\d+", message):
        return "retry running"
    if re.search(r" \(retried \d+ times\)\.$", message):
        return "retries exhausted"
    if message.startswith("successfully synced"):
        return "synced"
    return "other" if message else "none"


def _condition_kind(message: str) -> str:
    if "rpc error: code = Unavailable" in message:
        return "repo-server unavailable"
    if "Manifest generation error" in message:
        return "manifest generation"
    if message.startswith("Failed last sync attempt to ["):
        return "failed sync attempt"
    return "other"


def _undeclared(value: Any, schema: Mapping[str, Any], path: str) -> Iterator[str]:
    if isinstance(value, dict):
        properties = schema.get("properties")
        if not isinstance(properties, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
            return  # a map (labels), a free-form object (metadata), or a pruned ApplicationSource body
        for key, item in value.items():
            if key not in properties:
                yield f"{path}.{key}".lstrip(".")
            else:
                yield from _undeclared(item, properties[key], f"{path}.{key}")
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                yield from _undeclared(item, items, f"{path}[{index}]")


def _nulls(value: Any, path: str) -> Iterator[str]:
    if value is None:
        yield path or "<root>"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nulls(item, f"{path}.{key}".lstrip("."))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nulls(item, f"{path}[{index}]")
