"""The replay's send journal: every request recorded, fsync'd, *before* it is sent.

Results reach DuckDB in batches, so a process killed between a send and its batch would forget
the send; a rerun would then send the prompt again. The journal remembers: one JSON line per
send (and one per conversation id, as soon as the stream names it), appended and fsync'd, under
`<data_dir>/replay/journal/<run_id>.jsonl`. A torn last line (a kill mid-write) is ignored.

Sends share their syncs (group commit): a send waits until its line is on disk, but the lines
of every send made in one turn of the event loop are written and synced together, by a writer
process (`load.durable_append`) that does not wait for this process's GIL. One fsync per send
on the event loop (2-3 ms each on a busy disk) held 64 streams in flight to a fraction of their
pace; a thread that synced groups waited for the GIL instead (3.6 ms a send at 64 in flight). A
`started` line does not wait: it goes with the next group, and a resume that lacks it looks the
conversation up as for any unanswered send.
"""

from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

from load.durable_append import DurableAppender


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


class SendJournal:
    """Append-only, fsync'd record of sends, read back when a run resumes."""

    def __init__(self, data_dir: Path, run_id: str) -> None:
        """Open (or create) the run's journal for appending."""
        self.path = data_dir / "replay" / "journal" / f"{run_id}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._appender = DurableAppender(self.path)

    def close(self) -> None:
        """Write what is still queued and wait until it is synced, then close the journal."""
        self._appender.close()

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
        await self._synced(
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
        record = {
            "kind": "started",
            "row": row_id,
            "repeat": repeat_index,
            "round": round_,
            "conversation_id": conversation_id,
        }
        # A line the disk refuses is one never written: the next send's line fails the run.
        with suppress(OSError):
            self._appender.append(orjson.dumps(record) + b"\n")

    async def refused(self, row_id: str, repeat_index: int) -> None:
        """Record that the API refused this send (a rejected key): it landed nowhere."""
        await self._synced({"kind": "refused", "row": row_id, "repeat": repeat_index})

    async def stored(self, keys: list[tuple[str, int]]) -> None:
        """Record that these (row, repeat) results are in the warehouse: nothing is pending."""
        await self._synced(
            *({"kind": "stored", "row": row, "repeat": repeat} for row, repeat in keys)
        )

    async def _synced(self, *records: dict) -> None:
        """Append the records' lines; returns once they are on disk."""
        lines = b"".join(orjson.dumps(record) + b"\n" for record in records)
        await self._appender.append_synced(lines)
