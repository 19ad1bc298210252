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
    conflict,
    json_response,
    not_found,
    raw_json_response,
    server_error,
    validation_error,
)
from emulator.store import ConversationStore
from emulator.turns import Turn, build_turn

_MODEL_FIELDS = ("instructions", "tools", "completion_args", "guardrails")


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
        meta["agent_version"] = body.get("agent_version")
    return meta


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
        if conversation_id not in self.store:
            return not_found(f"Conversation {conversation_id}")
        if self.store.is_busy(conversation_id):
            return conflict()
        self.store.delete(conversation_id)
        return Response(status_code=204)

    # Completions.

    async def _read_body(
        self, request: Request, operation: str, conversation_id: str, fields: dict
    ) -> tuple[dict, bool, list[dict]]:
        """The body, whether it asks for a stream, and its problems; counts the request."""
        body, problems = decode_body(await request.body())
        stream = isinstance(body, dict) and body.get("stream") is True
        self.store.record(f"{operation}_stream" if stream else operation, conversation_id)
        if not problems:
            required = ("inputs", "from_entry_id") if operation == "restart" else ("inputs",)
            problems = check_body(body, fields, required, extra_allowed=operation == "start")
        if not problems and operation == "start":
            problems = check_start_target(body)
        return body, stream, problems

    async def start(self, request: Request) -> Response:
        """POST /v1/conversations: a new conversation and its first turn."""
        body, stream, problems = await self._read_body(request, "start", "", START_FIELDS)
        if problems:
            return validation_error(problems)
        fails = self._completion_fails()
        if fails and not stream:
            return server_error()
        now_us = now_micros()
        meta = _new_conversation(
            body, entity_id("conv", self.store.id_rng), format_timestamp(now_us)
        )
        turn = build_turn(meta, body["inputs"], now_us, self.store.id_rng)
        if body.get("store") is not False:
            self.store.create(meta, _stored_entries(turn, fails))
        return await self._answer(meta["id"], turn, stream, fails)

    async def append(self, request: Request) -> Response:
        """POST /v1/conversations/{id}: a new turn on an existing conversation."""
        conversation_id = request.path_params["conversation_id"]
        body, stream, problems = await self._read_body(
            request, "append", conversation_id, APPEND_FIELDS
        )
        if problems:
            return validation_error(problems)
        if conversation_id not in self.store:
            return not_found(f"Conversation {conversation_id}")
        if self.store.is_busy(conversation_id):
            return conflict()
        fails = self._completion_fails()
        if fails and not stream:
            return server_error()
        now_us = now_micros()
        turn = build_turn(
            self.store.conversation(conversation_id), body["inputs"], now_us, self.store.id_rng
        )
        if body.get("store", True):
            self.store.extend(conversation_id, _stored_entries(turn, fails), now_us)
        return await self._answer(conversation_id, turn, stream, fails)

    async def restart(self, request: Request) -> Response:
        """POST /v1/conversations/{id}/restart: a new conversation branching at from_entry_id."""
        source_id = request.path_params["conversation_id"]
        body, stream, problems = await self._read_body(
            request, "restart", source_id, RESTART_FIELDS
        )
        if problems:
            return validation_error(problems)
        if source_id not in self.store:
            return not_found(f"Conversation {source_id}")
        kept = self.store.entries_through(source_id, body["from_entry_id"])
        if kept is None:
            return not_found(f"Entry {body['from_entry_id']}")
        if self.store.is_busy(source_id):
            return conflict()
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
        turn = build_turn(meta, body["inputs"], now_us, self.store.id_rng)
        if body.get("store", True):
            self.store.create(meta, kept + _stored_entries(turn, fails))
        return await self._answer(meta["id"], turn, stream, fails)

    def _completion_fails(self) -> bool:
        """Whether this completion fails (stream_error_rate), decided before anything is stored."""
        rate = self.config.stream_error_rate
        return rate > 0 and self.failures.random() < rate

    async def _answer(
        self, conversation_id: str, turn: Turn, stream: bool, fails: bool
    ) -> Response:
        """Send the turn as JSON or as SSE; the conversation stays busy while it is 'generated'.

        A failing turn is streamed: started, a few deltas, then conversation.response.error.
        """
        self.store.claim(conversation_id)
        config = self.config
        delay_s = config.token_delay_ms / 1000
        if fails:
            events = failed_response_events(
                conversation_id,
                turn.outputs,
                turn.outputs[-1]["created_at"],
                SERVER_ERROR_MESSAGE,
                SERVER_ERROR_CODE,
            )
            frames = [encode_event(kind, data) for kind, data in events]
            return EventStreamResponse(frames, delay_s, lambda: self.store.release(conversation_id))
        if stream or delay_s > 0:
            events = response_events(
                conversation_id, turn.outputs, turn.usage, turn.outputs[-1]["created_at"]
            )
        if stream:
            frames = [encode_event(kind, data) for kind, data in events]
            if config.stream_cut_rate > 0 and self.chance.random() < config.stream_cut_rate:
                frames = frames[: self.chance.randint(1, len(frames) - 1)]
            return EventStreamResponse(frames, delay_s, lambda: self.store.release(conversation_id))
        try:
            if delay_s > 0:
                await asyncio.sleep(delay_s * (len(events) - 1))
        finally:
            self.store.release(conversation_id)
        payload = {
            "object": "conversation.response",
            "conversation_id": conversation_id,
            "outputs": turn.outputs,
            "usage": turn.usage,
        }
        return json_response(payload)
