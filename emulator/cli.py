"""`convo-etl emulator`: serve the local Conversations API emulator in the foreground."""

import signal
import sys
import time
from typing import Annotated

import typer

from emulator.app import build_app
from emulator.config import EmulatorConfig
from emulator.server import API_KEY_ENV, HOST, bind_loopback, url_of, uvicorn_server
from emulator.store import ConversationStore


def _ignore_signal(signum: int, frame: object) -> None:
    """uvicorn re-raises the signal that stopped it; after a clean shutdown it is moot."""


def emulator_command(
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")
    ] = 8000,
    conversations: Annotated[
        int, typer.Option(min=0, help="Synthetic conversations to serve.")
    ] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 0,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar=API_KEY_ENV,
            show_default=False,
            help="Only this bearer token is accepted (default: any non-empty token).",
        ),
    ] = None,
    latency_ms: Annotated[float, typer.Option(min=0, help="Delay added to every request.")] = 0.0,
    token_delay_ms: Annotated[
        float, typer.Option(min=0, help="Delay between streamed events (a completion's pace).")
    ] = 0.0,
    rps: Annotated[
        float | None,
        typer.Option(min=0.001, show_default=False, help="Requests per second before 429s."),
    ] = None,
    fault_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Fraction of requests answered 429/500/502/503.")
    ] = 0.0,
    stream_cut_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Fraction of streams cut before their end.")
    ] = 0.0,
    stream_error_rate: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            help="Fraction of completions that fail: a stream ends with "
            "conversation.response.error, a plain request gets a 500.",
        ),
    ] = 0.0,
    function_calls_end_turn: Annotated[
        bool,
        typer.Option(
            help="A client-side function call ends the turn (the API's behaviour); the "
            "answer comes when an append hands back its function.result.",
        ),
    ] = True,
    thinking_chunks: Annotated[
        bool,
        typer.Option(
            help="Reasoning models (magistral-*) answer with a thinking chunk first, "
            "streamed as thinking deltas.",
        ),
    ] = True,
    generation_ms: Annotated[
        float,
        typer.Option(
            min=0,
            help="Time a turn takes to generate: it is invisible and its conversation "
            "answers 409 until then, even if the client left.",
        ),
    ] = 0.0,
    fault_after_commit_rate: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            help="Fraction of turns stored whose answer then fails: 502, 504 or a dropped "
            "connection (mid-stream for streams).",
        ),
    ] = 0.0,
    retry_after: Annotated[
        bool, typer.Option(help="Send Retry-After with 429s (--no-retry-after omits it).")
    ] = True,
) -> None:
    """Serve the emulator of the Conversations API on 127.0.0.1 until SIGTERM or Ctrl-C."""
    config = EmulatorConfig(
        conversations=conversations,
        seed=seed,
        api_key=api_key,
        latency_ms=latency_ms,
        token_delay_ms=token_delay_ms,
        rps=rps,
        fault_rate=fault_rate,
        stream_cut_rate=stream_cut_rate,
        stream_error_rate=stream_error_rate,
        function_calls_end_turn=function_calls_end_turn,
        thinking_chunks=thinking_chunks,
        generation_ms=generation_ms,
        fault_after_commit_rate=fault_after_commit_rate,
        rate_limit_retry_after=retry_after,
    )
    started = time.perf_counter()
    store = ConversationStore(config.conversations, config.seed)
    try:
        sock = bind_loopback(port)
    except OSError as error:
        print(
            f"convo-etl emulator: cannot listen on {HOST}:{port}: {error.strerror}", file=sys.stderr
        )
        raise typer.Exit(1) from None
    elapsed = time.perf_counter() - started
    print(
        f"Emulator serving {conversations} conversations (seed {seed}) at {url_of(sock)}",
        flush=True,
    )
    print(f"synthetic data ready in {elapsed:.2f} s; stop with Ctrl-C or SIGTERM", file=sys.stderr)
    signal.signal(signal.SIGTERM, _ignore_signal)
    signal.signal(signal.SIGINT, _ignore_signal)
    try:
        uvicorn_server(build_app(store, config)).run(sockets=[sock])
    finally:
        sock.close()
    print("emulator stopped", file=sys.stderr)
