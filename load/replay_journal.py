"""The replay's send journal: every request recorded, fsync'd, *before* it is sent.

Results reach DuckDB in batches, so a process killed between a send and its batch would forget
the send; a rerun would then send the prompt again. The journal remembers: one JSON line per
send (and one per conversation id, as soon as the stream names it), appended and fsync'd, under
`<data_dir>/replay/journal/<run_id>.jsonl`. A torn last line (a kill mid-write) is ignored.

Sends share their fsyncs (group commit): a send waits until its line is on disk, but the lines
of every send waiting meanwhile are written and synced together, in a thread. One fsync per send
on the event loop (2-3 ms each on a busy disk) held 64 streams in flight to a fraction of their
pace. A `started` line does not wait: it goes with the next group, and a resume that lacks it
looks the conversation up as for any unanswered send.
"""

import asyncio
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson


@dataclass(frozen=True)
class JournalSend:
    """The last request a (row, repeat) sent: enough to find out later whether it landed."""

    round: int
    mode: str
    target: str | None
    known_entries: int | None
    tag: dict[str, str] | None
    sent_at: str
    conversation_id: str | None = None


@dataclass
class _Group:
    """Lines to write and sync together, and the future their waiting sends await."""

    done: asyncio.Future[None]
    lines: list[bytes] = field(default_factory=list)


class SendJournal:
    """Append-only, fsync'd record of sends, read back when a run resumes."""

    def __init__(self, data_dir: Path, run_id: str) -> None:
        """Open (or create) the run's journal for appending."""
        self.path = data_dir / "replay" / "journal" / f"{run_id}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()  # one writer at a time: the group thread or the loop
        self._group: _Group | None = None  # the lines not handed to the writer yet
        self._writer: asyncio.Task[None] | None = None

    def close(self) -> None:
        """Write what is still queued, then close the file (waiting for a write under way)."""
        group, self._group = self._group, None
        with self._lock:
            try:
                if group is not None and self._file is not None:
                    self._write_now(group.lines)
            finally:
                if self._file is not None:
                    os.close(self._file)
                    self._file = None

    def pending(self) -> dict[tuple[str, int], JournalSend]:
        """The last send of every (row, repeat) an earlier attempt journaled and did not store."""
        sends: dict[tuple[str, int], JournalSend] = {}
        if not self.path.exists():
            return sends
        for line in self.path.read_bytes().splitlines():
            try:
                record = orjson.loads(line)
                key = (record["row"], record["repeat"])
                if record["kind"] == "send":
                    sends[key] = JournalSend(
                        record["round"],
                        record["mode"],
                        record["target"],
                        record["known_entries"],
                        record["tag"],
                        record["sent_at"],
                    )
                elif record["kind"] in ("stored", "refused"):
                    sends.pop(key, None)
                elif key in sends and sends[key].round == record["round"]:
                    last = sends[key]
                    sends[key] = replace(last, conversation_id=record["conversation_id"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # a line torn by a kill mid-write
        return sends

    async def sending(self, row_id: str, repeat_index: int, send: JournalSend) -> None:
        """Record a send before it goes out: returns once its line is on disk."""
        await self._queued(
            {
                "kind": "send",
                "row": row_id,
                "repeat": repeat_index,
                "round": send.round,
                "mode": send.mode,
                "target": send.target,
                "known_entries": send.known_entries,
                "tag": send.tag,
                "sent_at": send.sent_at,
            }
        )

    def started(self, row_id: str, repeat_index: int, round_: int, conversation_id: str) -> None:
        """Record the conversation a send landed in, with the next group of lines (no wait)."""
        self._queued(
            {
                "kind": "started",
                "row": row_id,
                "repeat": repeat_index,
                "round": round_,
                "conversation_id": conversation_id,
            }
        )

    def refused(self, row_id: str, repeat_index: int) -> None:
        """Record that the API refused this send (a rejected key): it landed nowhere."""
        self._write_lines([{"kind": "refused", "row": row_id, "repeat": repeat_index}])

    def stored(self, keys: list[tuple[str, int]]) -> None:
        """Record that these (row, repeat) results are in the warehouse: nothing is pending."""
        self._write_lines(
            [{"kind": "stored", "row": row, "repeat": repeat} for row, repeat in keys]
        )

    def _queued(self, record: dict) -> asyncio.Future[None]:
        """Add a line to the next group; the future is done once the group is on disk."""
        if self._file is None:
            raise RuntimeError("the send journal is closed")
        if self._group is None:
            self._group = _Group(asyncio.get_running_loop().create_future())
        self._group.lines.append(orjson.dumps(record) + b"\n")
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups())
        return self._group.done

    async def _write_groups(self) -> None:
        """Write and sync each group in a thread, while the next one gathers lines."""
        while self._group is not None:
            group, self._group = self._group, None
            try:
                await asyncio.to_thread(self._write_locked, group.lines)
            except Exception as error:  # the sends waiting on this group fail with it
                group.done.set_exception(error)
                group.done.exception()  # a group of `started` lines alone has no one waiting
            else:
                group.done.set_result(None)

    def _write_locked(self, lines: list[bytes]) -> None:
        with self._lock:
            self._write_now(lines)

    def _write_lines(self, records: list[dict]) -> None:
        with self._lock:
            self._write_now([orjson.dumps(record) + b"\n" for record in records])

    def _write_now(self, lines: list[bytes]) -> None:
        """Append the lines and sync them (the caller holds the lock)."""
        if self._file is None:
            raise RuntimeError("the send journal is closed")
        os.write(self._file, b"".join(lines))
        os.fsync(self._file)
