"""A loopback server of canned Conversations API bodies: bytes the emulator could not produce.

The emulator encodes with orjson, which refuses what a real server may still send (integers
beyond 64 bits, 1,000 levels of nesting, lone surrogates); this serves any bytes as they are.
"""

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson


@dataclass(frozen=True)
class CannedConversation:
    """One conversation's object and the raw bodies of its history and messages."""

    conversation: dict
    history: bytes
    messages: bytes


def conversation_object(cid: str, updated_at: str = "2026-11-20T10:00:00Z") -> dict:
    """A model conversation object of the spec, with just what the export reads."""
    return {
        "object": "conversation",
        "id": cid,
        "model": "mistral-small-latest",
        "created_at": "2026-11-20T09:00:00Z",
        "updated_at": updated_at,
    }


def message_entry(cid: str, index: int, text: str) -> dict:
    """An assistant message entry of ``cid`` whose content is one text chunk."""
    return {
        "object": "entry",
        "type": "message.output",
        "id": f"{cid}-e{index}",
        "role": "assistant",
        "created_at": "2026-11-20T09:00:00Z",
        "content": [{"type": "text", "text": text}],
    }


def history_body(cid: str, entries_json: bytes) -> bytes:
    """A ConversationHistory body around already-encoded entries (a JSON array's text)."""
    head = b'{"object":"conversation.history","conversation_id":"' + cid.encode() + b'","entries":'
    return head + entries_json + b"}"


def messages_body(cid: str) -> bytes:
    """An empty ConversationMessages body."""
    return orjson.dumps({"object": "conversation.messages", "conversation_id": cid, "messages": []})


@contextmanager
def canned_api(conversations: Mapping[str, CannedConversation]) -> Iterator[str]:
    """Serve the conversations (list, get, history, messages) on loopback; yields the base URL."""
    listing = orjson.dumps([c.conversation for c in conversations.values()])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            body: bytes | None = None
            if parts == ["v1", "conversations"]:
                page = int(parse_qs(url.query).get("page", ["0"])[0])
                body = listing if page == 0 else b"[]"
            elif len(parts) >= 3 and parts[2] in conversations:
                canned = conversations[parts[2]]
                suffix = parts[3] if len(parts) == 4 else ""
                body = {
                    "": orjson.dumps(canned.conversation),
                    "history": canned.history,
                    "messages": canned.messages,
                }.get(suffix)
            if body is None:
                send_json(self, 404, b'{"detail":"Not Found"}')
            else:
                send_json(self, 200, body)

        def log_message(self, *args: object) -> None:
            """Quiet: the test asserts on rows, not on an access log."""

    with loopback_server(Handler) as url:
        yield url


def send_json(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
    """Answer the request ``handler`` holds with a JSON body."""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on loopback from a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
