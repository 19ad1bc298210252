"""Error mapping: each status to its class, messages without the key, and errors that pickle."""

import pickle
from datetime import UTC, datetime

import pytest

from extract.errors import (
    ApiError,
    ApiKeyRejected,
    Conflict,
    NotFound,
    RequestRejected,
    RetriesExhausted,
    StreamCut,
    error_for_status,
)
from extract.events import StreamEvent


def test_statuses_map_to_their_error_classes_without_the_key() -> None:
    key = "sk-echoed-secret"
    origin = "https://api.example"
    unauthorized = error_for_status(401, b'{"message":"Unauthorized"}', "list", origin, key)
    assert isinstance(unauthorized, ApiKeyRejected)
    assert str(unauthorized) == (
        "list: HTTP 401: API key rejected by https://api.example: check MISTRAL_API_KEY"
    )
    assert isinstance(error_for_status(404, b"{}", "get", origin, key), NotFound)
    conflict = error_for_status(
        409, b'{"message":"Conversation is being updated"}', "append", origin, key
    )
    assert isinstance(conflict, Conflict)
    assert conflict.message == "Conversation is being updated"
    echoed = error_for_status(400, f'{{"message":"bad key {key}"}}'.encode(), "start", origin, key)
    assert isinstance(echoed, RequestRejected)
    assert key not in str(echoed)
    assert key not in repr(echoed)
    assert key not in repr(echoed.detail)
    assert echoed.message == "bad key ***"
    plain = error_for_status(418, b"I'm a teapot\n", "get", origin, None)
    assert isinstance(plain, RequestRejected)
    assert plain.message == "I'm a teapot"


def test_a_validation_detail_becomes_a_readable_message() -> None:
    body = (
        b'{"detail":[{"type":"missing","loc":["body","inputs"],"msg":"Field required"},'
        b'{"type":"string_type","loc":["body","model"],"msg":"Input should be a valid string"}]}'
    )
    error = error_for_status(422, body, "start", "http://h", None)
    assert isinstance(error, RequestRejected)
    assert error.message == (
        "body.inputs: Field required; body.model: Input should be a valid string"
    )
    assert [d["loc"][-1] for d in error.detail] == ["inputs", "model"]


@pytest.mark.parametrize(
    "error",
    [
        ApiError(500, "boom", "get"),
        NotFound(404, "no such conversation", "history"),
        RequestRejected(422, "body.inputs: Field required", "start", [{"loc": ["body"]}]),
        RetriesExhausted(None, "gave up after 7 attempts: ReadTimeout", "list"),
        StreamCut(
            [StreamEvent("conversation.response.started", {}, "{}", datetime.now(UTC), 1.5)],
            "start_stream",
        ),
    ],
)
def test_errors_survive_pickling_as_they_cross_into_prefect_results(error: ApiError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert (copy.status, copy.message, copy.operation) == (
        error.status,
        error.message,
        error.operation,
    )
    assert str(copy) == str(error)
    if isinstance(error, StreamCut):
        assert copy.events == error.events
    if isinstance(error, RequestRejected):
        assert copy.detail == error.detail
