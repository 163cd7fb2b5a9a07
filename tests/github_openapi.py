"""GitHub's published OpenAPI description (npm @octokit/openapi, which republishes github/rest-api-description),
and a check of one HTTP answer against it: the operation its method and path name, the schema of its status.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator

DESCRIPTION = (
    Path(__file__).resolve().parents[1] / "node_modules" / "@octokit" / "openapi" / "generated" / "api.github.com.json"
)
_METHODS = ("get", "put", "post", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    operation_id: str
    responses: dict[str, Any]


@cache
def description() -> dict[str, Any]:
    if not DESCRIPTION.exists():
        raise FileNotFoundError(f"{DESCRIPTION} is missing: run make bootstrap (npm ci installs @octokit/openapi)")
    loaded: dict[str, Any] = _nullable_without_type(json.loads(DESCRIPTION.read_text()))
    return loaded


def _nullable_without_type(node: Any) -> Any:
    """GitHub writes ``nullable: true`` beside ``oneOf`` without a ``type`` (a commit's ``author``: an
    account, or null). OpenAPI 3.0 validators apply ``nullable`` only with ``type``; say what GitHub means."""
    if isinstance(node, list):
        return [_nullable_without_type(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable_without_type(value) for key, value in node.items()}
    if converted.get("nullable") is True and "type" not in converted:
        del converted["nullable"]
        return {"anyOf": [converted, {"enum": [None]}]}
    return converted


@cache
def _routes() -> list[tuple[re.Pattern[str], tuple[int, int], Operation]]:
    spec = description()
    multi_segment = {
        parameter["name"]
        for parameter in spec["components"]["parameters"].values()
        if parameter.get("x-multi-segment") and parameter.get("in") == "path"
    }
    routes = []
    for template, item in spec["paths"].items():
        pattern = re.sub(
            r"\{([^}]+)\}",
            lambda match: "(.+)" if match[1] in multi_segment or match[1] == "path" else "([^/]+)",
            re.escape(template).replace(r"\{", "{").replace(r"\}", "}"),
        )
        # A router prefers the template with fewer parameters, then the more literal one.
        literal = (-template.count("{"), len(re.sub(r"\{[^}]+\}", "", template)))
        for method in _METHODS:
            if method in item:
                operation = Operation(method.upper(), template, item[method]["operationId"], item[method]["responses"])
                routes.append((re.compile(f"^{pattern}$"), literal, operation))
    return routes


def operation_for(method: str, path: str) -> Operation | None:
    """The documented operation a request names (the most literal template wins, as a router would)."""
    candidates = [
        (literal, operation)
        for pattern, literal, operation in _routes()
        if operation.method == method and pattern.match(path)
    ]
    return max(candidates, key=lambda candidate: candidate[0])[1] if candidates else None


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        section, kind, name = node["$ref"].removeprefix("#/").split("/")
        node = description()[section][kind][name]
    return node


def problems(method: str, path: str, status: int, body: Any) -> list[str]:
    """What is wrong with an answer, by GitHub's description; [] when it is valid."""
    operation = operation_for(method, path)
    if operation is None:
        return [f"{method} {path}: no such operation in GitHub's description"]
    where = f"{operation.operation_id} {status}"
    response = operation.responses.get(str(status)) or operation.responses.get("default")
    if response is None:
        return [f"{where}: status {status} is not documented (documented: {sorted(operation.responses)})"]
    response = _resolve(response)
    content = (response.get("content") or {}).get("application/json")
    if content is None or "schema" not in content:
        return [] if body in (None, "", b"") else [f"{where}: documented without a JSON body, but one was sent"]
    schema = {**content["schema"], "components": description()["components"]}
    validator = OAS30Validator(schema)
    return [
        f"{where}: {'/'.join(str(part) for part in error.absolute_path) or '(body)'}: {error.message[:300]}"
        for error in sorted(validator.iter_errors(body), key=lambda error: list(map(str, error.absolute_path)))
        # GitHub's description has oneOf alternatives that overlap (a 409 of PUT contents is a basic-error
        # and a repository-rule-violation-error at once, whatever GitHub sends): read oneOf as anyOf there.
        if not (error.validator == "oneOf" and "is valid under each of" in error.message)
    ]
