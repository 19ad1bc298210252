"""The request bodies replay sends are what the CSV says: compared with what a server received.

A small recording proxy on loopback sits between replay and the emulator and keeps every POST
body as it arrived.
"""

import asyncio
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from emulator.catalog import AGENTS, FUNCTION_TOOLS
from emulator.server import RunningEmulator
from flows.replay.flow import replay_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")

MakeEmulator = Callable[..., RunningEmulator]
MODEL = "mistral-small-latest"
TAG_KEYS = ("convo_etl_run", "convo_etl_row", "convo_etl_repeat")


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")


class RecordingProxy:
    """Forwards every request to `upstream`, buffering the answer; keeps each POST's path and
    JSON body."""

    def __init__(self, upstream: str) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def _forward(self, body: bytes | None) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                with httpx.Client(timeout=60) as client:
                    answer = client.request(
                        self.command, upstream + self.path, content=body, headers=headers
                    )
                self.send_response(answer.status_code)
                for name in ("content-type", "retry-after"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                proxy.posts.append((self.path, orjson.loads(body)))
                self._forward(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "RecordingProxy":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def proxied(make_emulator: MakeEmulator) -> Iterator[tuple[RunningEmulator, RecordingProxy]]:
    emu = make_emulator(conversations=2)
    with RecordingProxy(emu.url) as proxy:
        yield emu, proxy


def csv_cell(value: object) -> str:
    return '"' + orjson.dumps(value).decode().replace('"', '""') + '"'


@pytest.mark.parametrize("stream", [True, False])
def test_request_bodies_are_exactly_what_the_csv_says(
    tmp_path: Path,
    data_dir: Path,
    proxied: tuple[RunningEmulator, RecordingProxy],
    stream: bool,
) -> None:
    emu, proxy = proxied
    existing = emu.store.conversations_newest_first()[0]
    first_entry = emu.store.history(existing["id"])[0]["id"]
    tools = [FUNCTION_TOOLS[0], {"type": "web_search"}]
    guardrails = [{"block_on_error": True, "moderation_llm_v1": {"action": "block"}}]
    inputs = [{"type": "message.input", "role": "user", "content": "Entries, not a prompt."}]
    agent = AGENTS[1].id
    header = (
        "id,prompt,inputs,model,agent_id,agent_version,tools,completion_args,temperature,"
        "store,handoff_execution,guardrails,metadata,conversation_id,from_entry_id\n"
    )
    text = header + (
        f"full,Use the tools.,,{MODEL},,,{csv_cell(tools)},"
        f"{csv_cell({'presence_penalty': 0.5, 'stop': ['END']})},0.3,false,,"
        f"{csv_cell(guardrails)},{csv_cell({'suite': 'a'})},,\n"
        f",,{csv_cell(inputs)},,{agent},2,,,,true,client,,,,\n"
        f"append,Appended.,,,,,,{csv_cell({'max_tokens': 5})},,,server,,,{existing['id']},\n"
        f"restart,Branch.,,,,3,,,,,,{csv_cell(guardrails)},,{existing['id']},{first_entry}\n"
    )
    prompts = tmp_path / "prompts.csv"
    prompts.write_text(text, encoding="utf-8")
    summary = asyncio.run(
        replay_flow(str(prompts), str(data_dir), base_url=proxy.url, run_id="r", stream=stream)
    )
    assert summary.errors == 0
    sent = {
        (body.get("metadata") or {}).get("convo_etl_row", path): body for path, body in proxy.posts
    }
    assert len(proxy.posts) == 4

    def untagged(body: dict[str, Any], row_id: str) -> dict[str, Any]:
        metadata = dict(body.pop("metadata"))
        assert [metadata.pop(key) for key in TAG_KEYS] == ["r", row_id, "0"]
        return body | ({"metadata": metadata} if metadata else {})

    assert untagged(sent["full"], "full") == {
        "inputs": "Use the tools.",
        "model": MODEL,
        "tools": tools,
        "completion_args": {"presence_penalty": 0.5, "stop": ["END"], "temperature": 0.3},
        "store": False,
        "guardrails": guardrails,
        "metadata": {"suite": "a"},
        "stream": stream,
    }
    assert untagged(sent["2"], "2") == {
        "inputs": inputs,
        "agent_id": agent,
        "agent_version": 2,
        "store": True,
        "handoff_execution": "client",
        "stream": stream,
    }
    assert sent[f"/v1/conversations/{existing['id']}"] == {
        "inputs": "Appended.",
        "completion_args": {"max_tokens": 5},
        "handoff_execution": "server",
        "stream": stream,
    }
    assert untagged(sent["restart"], "restart") == {
        "inputs": "Branch.",
        "from_entry_id": first_entry,
        "agent_version": 3,
        "guardrails": guardrails,
        "stream": stream,
    }
