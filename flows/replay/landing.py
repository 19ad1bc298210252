"""Did a send land? Looked up in the API, never guessed: a resend must not duplicate a turn.

An append landed if its conversation's history grew past the entries known before sending; a
start or restart landed if a conversation carries the run's tag (or the stream named it). A
turn is invisible while it generates, so the lookup polls with backoff until the turn appears
or the recover timeout passes; only then is the send known not to have landed.
"""

import asyncio
import time
from datetime import timedelta
from typing import Any

from extract.client import ConversationsClient
from extract.errors import ApiError, NotFound
from load.replay_journal import JournalSend
from transform.replay_outputs import AssistantOutput, history_turn
from transform.replay_requests import APPEND
from transform.timestamps import parse_timestamp

FIRST_POLL_SECONDS, MAX_POLL_SECONDS = 0.2, 5.0
LIST_PAGE_SIZE = 100
# Conversations updated this long before a send cannot be the one it started (clock skew).
LIST_SKEW = timedelta(minutes=10)

Landed = tuple[str, AssistantOutput]


class LandingFinder:
    """Looks for the turn a send may have stored, polling until it appears or time is up."""

    def __init__(self, client: ConversationsClient, recover_timeout: float) -> None:
        self._client = client
        self._timeout = recover_timeout

    async def find(self, send: JournalSend) -> Landed | None:
        """The conversation and output of the send's turn, or None once the timeout passed."""
        deadline = time.monotonic() + self._timeout
        wait = FIRST_POLL_SECONDS
        while True:
            try:
                found = await self._look(send)
            except ApiError:
                found = None  # the lookup itself failed: try again until the deadline
            if found is not None:
                return found
            if time.monotonic() + wait > deadline:
                return None
            await asyncio.sleep(wait)
            wait = min(wait * 2, MAX_POLL_SECONDS)

    async def _look(self, send: JournalSend) -> Landed | None:
        conversation_id = send.conversation_id
        if conversation_id is None and send.mode == APPEND:
            conversation_id = send.target
        if conversation_id is None and send.tag is not None:
            conversation_id = await self._tagged(send)
        if conversation_id is None:
            return None
        try:
            history = await self._client.get_history(conversation_id)
        except NotFound:
            return None
        known = send.known_entries if conversation_id == send.target else 0
        turn = history_turn(history, known or 0)
        return None if turn is None else (conversation_id, turn)

    async def _tagged(self, send: JournalSend) -> str | None:
        """The conversation carrying the send's tag: the list filtered by the tag, scanned newest
        first back to the time of the send (and checked again here, whatever the filter did)."""
        sent_at = parse_timestamp(send.sent_at)
        cutoff = sent_at - LIST_SKEW if sent_at is not None else None
        page = 0
        while True:
            items = await self._client.list_conversations(page, LIST_PAGE_SIZE, send.tag)
            for item in items:
                if _carries(item, send.tag or {}):
                    return str(item.get("id"))
            updated = [parse_timestamp(item.get("updated_at")) for item in items]
            older = cutoff is not None and updated and all(u and u < cutoff for u in updated)
            if len(items) < LIST_PAGE_SIZE or older:
                return None
            page += 1


def _carries(item: dict[str, Any], tag: dict[str, str]) -> bool:
    metadata = item.get("metadata") or {}
    return isinstance(metadata, dict) and all(metadata.get(k) == v for k, v in tag.items())
