"""The local Lambda Invoke API (devstack/lambda_api.py), through boto3's Lambda client as the CLI uses it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from devstack.lambda_api import LambdaApiControl, function_arn, start_lambda_api
from devstack.process import RunningServer

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_lambda.type_defs import InvocationResponseTypeDef

pytestmark = pytest.mark.stack

HANDLERS = "tests.operator.lambda_handlers"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_lambda_api(tmp_path_factory.mktemp("lambda-api"), env={"LAMBDA_TEST_VARIABLE": "from the server"})
    control = LambdaApiControl(server.url)
    control.register("echo", f"{HANDLERS}.echo", {})
    control.register("echo-env", f"{HANDLERS}.echo", {"LAMBDA_TEST_VARIABLE": "from the function"})
    control.register("fail", f"{HANDLERS}.fail", {})
    control.register("crash", f"{HANDLERS}.crash", {})
    control.register("hang", f"{HANDLERS}.hang", {}, timeout_seconds=1)
    yield server
    server.stop()


@pytest.fixture
def client(api: RunningServer) -> LambdaClient:
    lambda_client: LambdaClient = boto3.client(
        "lambda",
        endpoint_url=api.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return lambda_client


def payload(response: InvocationResponseTypeDef) -> Any:
    return json.loads(response["Payload"].read())


def test_invoke_runs_the_handler_with_a_context_and_the_functions_environment(client: LambdaClient) -> None:
    response = client.invoke(FunctionName="echo", Payload=json.dumps({"hello": "world"}).encode(), LogType="Tail")

    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    answer = payload(response)
    assert answer["event"] == {"hello": "world"}
    assert (answer["function"], answer["arn"]) == ("echo", function_arn("echo"))
    assert answer["request_id"] == response["ResponseMetadata"]["RequestId"]
    assert answer["variable"] == "from the server"
    assert "echo handler saw {'hello': 'world'}" in base64.b64decode(response["LogResult"]).decode()
    assert payload(client.invoke(FunctionName="echo-env", Payload=b"{}"))["variable"] == "from the function"


def test_a_function_stays_warm_by_name_or_arn_until_it_is_registered_again(
    api: RunningServer, client: LambdaClient
) -> None:
    first = payload(client.invoke(FunctionName="echo", Payload=b"{}"))["pid"]
    assert payload(client.invoke(FunctionName=function_arn("echo"), Payload=b"{}"))["pid"] == first
    assert payload(client.invoke(FunctionName="echo", Qualifier="$LATEST", Payload=b"{}"))["pid"] == first

    LambdaApiControl(api.url).register("echo", f"{HANDLERS}.echo", {})

    assert payload(client.invoke(FunctionName="echo", Payload=b"{}"))["pid"] != first


def test_an_unknown_function_is_resource_not_found(client: LambdaClient) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
        client.invoke(FunctionName="nope", Payload=b"{}")

    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert caught.value.response["Error"]["Message"] == f"Function not found: {function_arn('nope')}"


def test_a_payload_that_is_not_json_is_refused_before_the_handler(client: LambdaClient) -> None:
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        client.invoke(FunctionName="echo", Payload=b"{not json")


def test_handler_errors_crashes_and_timeouts_are_unhandled_function_errors(client: LambdaClient) -> None:
    failed = client.invoke(FunctionName="fail", Payload=b"{}")
    assert (failed["StatusCode"], failed["FunctionError"]) == (200, "Unhandled")
    error = payload(failed)
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "the handler failed on purpose")
    assert any("lambda_handlers.py" in line for line in error["stackTrace"])

    crashed = client.invoke(FunctionName="crash", Payload=b"{}")
    assert crashed["FunctionError"] == "Unhandled" and payload(crashed)["errorType"] == "Runtime.ExitError"

    hung = client.invoke(FunctionName="hang", Payload=b"{}")  # registered with a 1-second timeout
    assert hung["FunctionError"] == "Unhandled"
    assert payload(hung) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "Task timed out after 1.00 seconds",
        "stackTrace": [],
    }


def test_dry_run_and_event_invocations_answer_like_lambda(client: LambdaClient) -> None:
    assert client.invoke(FunctionName="echo", InvocationType="DryRun", Payload=b"{}")["StatusCode"] == 204
    assert client.invoke(FunctionName="echo", InvocationType="Event", Payload=b"{}")["StatusCode"] == 202
