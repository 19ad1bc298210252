"""The ten operations (and the latest spec's delete) as Starlette route handlers."""

import asyncio
import contextlib
import random
from collections.abc import Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from emulator.config import EmulatorConfig
from emulator.events import encode_event, failed_response_events, response_events
from emulator.formats import entity_id, format_timestamp, now_micros
from emulator.request_bodies import (
    APPEND_FIELDS,
    RESTART_FIELDS,
    START_FIELDS,
    check_body,
    check_start_target,
    decode_body,
)
from emulator.responses import (
    SERVER_ERROR_CODE,
    SERVER_ERROR_MESSAGE,
    EventStreamResponse,
    api_error,
    conflict,
    dropped_connection,
    gateway_error,
    json_response,
    not_found,
    raw_json_response,
    server_error,
    validation_error,
)
from emulator.store import ConversationStore
from emulator.turns import Turn, build_turn


def _query_int(request: Request, name: str, default: int, minimum: int) -> int | dict:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        message = "Input should be a valid integer, unable to parse string as an integer"
        return {"type": "int_parsing", "loc": ["query", name], "msg": message, "input": raw}
    if value < minimum:
        return {
            "type": "greater_than_equal",
            "loc": ["query", name],
            "msg": f"Input should be greater than or equal to {minimum}",
            "input": raw,
            "ctx": {"ge": minimum},
        }
    return value


def _new_conversation(body: dict, conversation_id: str, now: str) -> dict:
    """The conversation object a start creates, in the API's field order."""
    meta: dict = {}
    if body.get("agent_id") is None:
        meta["instructions"] = body.get("instructions")
        meta["tools"] = body.get("tools") or []
        meta["completion_args"] = body.get("completion_args") or {}
        if body.get("guardrails") is not None:
            meta["guardrails"] = body["guardrails"]
    meta["name"] = body.get("name")
    meta["description"] = body.get("description")
    meta["metadata"] = body.get("metadata")
    meta |= {"object": "conversation", "id": conversation_id, "created_at": now, "updated_at": now}
    if body.get("agent_id") is None:
        meta["model"] = body["model"]
    else:
        meta["agent_id"] = body["agent_id"]
        version = body.get("agent_version")
        meta["agent_version"] = CURRENT_AGENT_VERSION if version is None else version
    return meta


_AFTER_COMMIT_FAULTS = (502, 504, 0)
CURRENT_AGENT_VERSION = 1
# Our guess at one guardrail's verdict in a response (the spec only says "object").
_GUARDRAIL_PASSED = {"blocked": False, "categories": {}}


def _stored_entries(turn: Turn, fails: bool) -> list[dict]:
    """What a turn adds to its conversation: a failed one keeps its inputs but no answer.

    Our reading of the API: the started event has already named the conversation, so that id
    must resolve afterwards, and the inputs were accepted; only the answer failed. A client
    that sends the turn again appends its inputs a second time, as it would with the API.
    """
    return turn.inputs if fails else turn.inputs + turn.outputs


class ConversationsApi:
    """Handlers sharing the store, the live config and one seeded random source."""

    def __init__(self, store: ConversationStore, config: EmulatorConfig) -> None:
        self.store = store
        self.config = config
        self.chance = random.Random(f"{config.seed}:streams")
        self.failures = random.Random(f"{config.seed}:completion-errors")
        self.generations: set[asyncio.Future] = set()

    def router(self) -> Router:
        """A bare Starlette router: no middleware stack on the hot path."""
        return Router(
            routes=[
                Route("/v1/conversations", self.list_conversations, methods=["GET"]),
                Route("/v1/conversations", self.start, methods=["POST"]),
                Route("/v1/conversations/{conversation_id}", self.get, methods=["GET"]),
                Route("/v1/conversations/{conversation_id}", self.append, methods=["POST"]),
                Route("/v1/conversations/{conversation_id}", self.delete, methods=["DELETE"]),
                Route("/v1/conversations/{conversation_id}/history", self.history, methods=["GET"]),
                Route(
                    "/v1/conversations/{conversation_id}/messages", self.messages, methods=["GET"]
                ),
                Route(
                    "/v1/conversations/{conversation_id}/restart", self.restart, methods=["POST"]
                ),
            ],
            redirect_slashes=False,
            default=self.unknown_path,
        )

    async def unknown_path(self, scope: dict, receive: object, send: object) -> None:
        """404 as FastAPI words it for a path the API does not have."""
        await json_response({"detail": "Not Found"}, 404)(scope, receive, send)

    # Reads.

    async def list_conversations(self, request: Request) -> Response:
        """GET /v1/conversations: a page of conversations, newest first."""
        self.store.record("list", "")
        page = _query_int(request, "page", 0, 0)
        page_size = _query_int(request, "page_size", 100, 1)
        problems = [value for value in (page, page_size) if isinstance(value, dict)]
        # The SDK sends an "unset" sentinel string when no filter is given: only an object filters.
        metadata = None
        raw_metadata = request.query_params.get("metadata")
        if raw_metadata:
            with contextlib.suppress(orjson.JSONDecodeError):
                metadata = orjson.loads(raw_metadata)
            if not isinstance(metadata, dict):
                metadata = None
        if problems:
            return validation_error(problems)
        return raw_json_response(self.store.list_json(page, page_size, metadata))

    async def get(self, request: Request) -> Response:
        """GET /v1/conversations/{id}: one conversation object."""
        return self._cached_read(request, "get", self.store.conversation_json)

    async def history(self, request: Request) -> Response:
        """GET /v1/conversations/{id}/history: every entry in append order."""
        return self._cached_read(request, "history", self.store.history_json)

    async def messages(self, request: Request) -> Response:
        """GET /v1/conversations/{id}/messages: the message entries only."""
        return self._cached_read(request, "messages", self.store.messages_json)

    def _cached_read(
        self, request: Request, operation: str, body_of: Callable[[str], bytes | None]
    ) -> Response:
        conversation_id = request.path_params["conversation_id"]
        self.store.record(operation, conversation_id)
        body = body_of(conversation_id)
        if body is None:
            return not_found(f"Conversation {conversation_id}")
        return raw_json_response(body)

    async def delete(self, request: Request) -> Response:
        """DELETE /v1/conversations/{id} (latest spec): 204, or 404 if unknown."""
        conversation_id = request.path_params["conversation_id"]
        self.store.record("delete", conversation_id)
        if self.store.is_busy(conversation_id):
            return conflict()
        if conversation_id not in self.store:
            return not_found(f"Conversation {conversation_id}")
        self.store.delete(conversation_id)
        return Response(status_code=204)

    # Completions.

    async def _read_body(
        self, request: Request, operation: str, conversation_id: str, fields: dict
    ) -> tuple[dict, bool, list[dict]]:
        """The body, whether it asks for a stream, and its problems; counts the request.

        `inputs` is required by start only: the latest spec makes it optional on append and
        restart (a turn that only continues).
        """
        body, problems = decode_body(await request.body())
        stream = isinstance(body, dict) and body.get("stream") is True
        self.store.record(f"{operation}_stream" if stream else operation, conversation_id)
        if not problems:
            required = {"start": ("inputs",), "restart": ("from_entry_id",)}.get(operation, ())
            problems = check_body(body, fields, required, extra_allowed=operation == "start")
        if not problems and operation == "start":
            problems = check_start_target(body)
        return body, stream, problems

    async def start(self, request: Request) -> Response:
        """POST /v1/conversations: a new conversation and its first turn."""
        body, stream, problems = await self._read_body(request, "start", "", START_FIELDS)
        if problems:
            return validation_error(problems)
        unknown = _unknown_results([], body.get("inputs"))
        if unknown is not None:
            return unknown
        fails = self._completion_fails()
        if fails and not stream:
            return server_error()
        now_us = now_micros()
        meta = _new_conversation(
            body, entity_id("conv", self.store.id_rng), format_timestamp(now_us)
        )
        turn = self._turn(meta, body, now_us)
        entries = _stored_entries(turn, fails)

        def commit() -> None:
            self.store.create(meta, entries)
            self.store.record_turn("start", meta["id"], entries, body.get("metadata"))

        return await self._answer(meta, turn, stream, fails, _stored(body, commit))

    async def append(self, request: Request) -> Response:
        """POST /v1/conversations/{id}: a new turn on an existing conversation."""
        conversation_id = request.path_params["conversation_id"]
        body, stream, problems = await self._read_body(
            request, "append", conversation_id, APPEND_FIELDS
        )
        if problems:
            return validation_error(problems)
        if self.store.is_busy(conversation_id):
            return conflict()
        if conversation_id not in self.store:
            return not_found(f"Conversation {conversation_id}")
        unknown = _unknown_results(self.store.history(conversation_id), body.get("inputs"))
        if unknown is not None:
            return unknown
        fails = self._completion_fails()
        if fails and not stream:
            return server_error()
        now_us = now_micros()
        conversation = self.store.conversation(conversation_id)
        turn = self._turn(conversation, body, now_us)
        entries = _stored_entries(turn, fails)

        def commit() -> None:
            self.store.extend(conversation_id, entries, now_micros())
            self.store.record_turn("append", conversation_id, entries, None)

        return await self._answer(conversation, turn, stream, fails, _stored(body, commit))

    async def restart(self, request: Request) -> Response:
        """POST /v1/conversations/{id}/restart: a new conversation branching at from_entry_id."""
        source_id = request.path_params["conversation_id"]
        body, stream, problems = await self._read_body(
            request, "restart", source_id, RESTART_FIELDS
        )
        if problems:
            return validation_error(problems)
        if self.store.is_busy(source_id):
            return conflict()
        if source_id not in self.store:
            return not_found(f"Conversation {source_id}")
        kept = self.store.entries_through(source_id, body["from_entry_id"])
        if kept is None:
            return not_found(f"Entry {body['from_entry_id']}")
        unknown = _unknown_results(kept, body.get("inputs"))
        if unknown is not None:
            return unknown
        fails = self._completion_fails()
        if fails and not stream:
            return server_error()
        now_us = now_micros()
        now = format_timestamp(now_us)
        meta = self.store.conversation(source_id) | {
            "id": entity_id("conv", self.store.id_rng),
            "created_at": now,
            "updated_at": now,
        }
        if "metadata" in body:
            meta["metadata"] = body["metadata"]
        if "agent_version" in body and "agent_id" in meta:
            meta["agent_version"] = body["agent_version"]
        turn = self._turn(meta, body, now_us)
        entries = kept + _stored_entries(turn, fails)

        def commit() -> None:
            self.store.create(meta, entries)
            self.store.record_turn("restart", meta["id"], entries, body.get("metadata"))

        return await self._answer(meta, turn, stream, fails, _stored(body, commit))

    def _turn(self, conversation: dict, body: dict, now_us: int) -> Turn:
        return build_turn(
            conversation,
            body.get("inputs"),
            now_us,
            self.store.id_rng,
            self.config.function_calls_end_turn,
            self.config.thinking_chunks,
        )

    def _completion_fails(self) -> bool:
        """Whether this completion fails (stream_error_rate), decided before anything is stored."""
        rate = self.config.stream_error_rate
        return rate > 0 and self.failures.random() < rate

    def _fault_after_commit(self) -> int | None:
        """502, 504 or 0 (a dropped connection) for an answer that fails once its turn is
        stored (fault_after_commit_rate); None for an answer that arrives."""
        rate = self.config.fault_after_commit_rate
        if rate > 0 and self.failures.random() < rate:
            return self.failures.choice(_AFTER_COMMIT_FAULTS)
        return None

    async def _generate(self, conversation_id: str, seconds: float, commit: Callable) -> None:
        """The turn's generation: it takes `seconds`, then the turn is stored (whatever the
        client did meanwhile) and the conversation takes requests again."""
        try:
            if seconds > 0:
                await asyncio.sleep(seconds)
            commit()
        finally:
            self.store.release(conversation_id)

    async def _answer(
        self, conversation: dict, turn: Turn, stream: bool, fails: bool, commit: Callable
    ) -> Response:
        """Generate the turn in the background and answer it as JSON or as SSE.

        The conversation is busy (409 to other turns) and the turn invisible until generation
        ends; a failing turn is streamed: started, a few deltas, then conversation.response.error.
        """
        conversation_id = conversation["id"]
        if not self.store.claim(conversation_id):
            # Another turn on this conversation began while this request's body was read.
            return conflict()
        config = self.config
        delay_s = config.token_delay_ms / 1000
        created_at = turn.outputs[-1]["created_at"]
        if fails:
            events = failed_response_events(
                conversation_id, turn.outputs, created_at, SERVER_ERROR_MESSAGE, SERVER_ERROR_CODE
            )
        else:
            events = response_events(conversation_id, turn.outputs, turn.usage, created_at)
        seconds = config.generation_ms / 1000 + delay_s * (len(events) - 1)
        generation = asyncio.ensure_future(self._generate(conversation_id, seconds, commit))
        self.generations.add(generation)
        generation.add_done_callback(self.generations.discard)
        fault = None if fails else self._fault_after_commit()
        if stream:
            frames = [encode_event(kind, data) for kind, data in events]
            cut = config.stream_cut_rate > 0 and self.chance.random() < config.stream_cut_rate
            if cut or fault is not None:
                frames = frames[: self.chance.randint(1, len(frames) - 1)]
            return EventStreamResponse(frames, delay_s, generation, drop=fault is not None)
        await asyncio.shield(generation)
        if fault == 0:
            return dropped_connection
        if fault is not None:
            return gateway_error(fault)
        payload = {
            "object": "conversation.response",
            "conversation_id": conversation_id,
            "outputs": turn.outputs,
            "usage": turn.usage,
        }
        if conversation.get("guardrails"):
            payload["guardrails"] = [_GUARDRAIL_PASSED for _ in conversation["guardrails"]]
        return json_response(payload)


def _unknown_results(history: list[dict], inputs: object) -> Response | None:
    """400 if `inputs` hand back a result for a function call `history` does not hold."""
    wanted = {
        entry.get("tool_call_id")
        for entry in (inputs if isinstance(inputs, list) else ())
        if entry.get("type") == "function.result"
    }
    called = {entry.get("tool_call_id") for entry in history if entry["type"] == "function.call"}
    unknown = sorted(wanted - called)
    if not unknown:
        return None
    message = f"No function call with tool_call_id {unknown[0]} in this conversation"
    return api_error(400, message, "invalid_request_error")


def _stored(body: dict, commit: Callable[[], None]) -> Callable[[], None]:
    """`commit`, or nothing for a `store: false` turn (answered, never stored)."""
    return commit if body.get("store", True) is not False else _store_nothing


def _store_nothing() -> None:
    """A `store: false` turn leaves no trace."""
