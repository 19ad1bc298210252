"""The replay's send journal: every request recorded, fsync'd, *before* it is sent.

Results reach DuckDB in batches, so a process killed between a send and its batch would forget
the send; a rerun would then send the prompt again. The journal remembers: one JSON line per
send (and one per conversation id, as soon as the stream names it), appended and fsync'd, under
`<data_dir>/replay/journal/<run_id>.jsonl`. A torn last line (a kill mid-write) is ignored.
"""

import os
from dataclasses import dataclass, replace
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


class SendJournal:
    """Append-only, fsync'd record of sends, read back when a run resumes."""

    def __init__(self, data_dir: Path, run_id: str) -> None:
        """Open (or create) the run's journal for appending."""
        self.path = data_dir / "replay" / "journal" / f"{run_id}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def close(self) -> None:
        """Close the file; everything in it is already on disk."""
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

    def sending(self, row_id: str, repeat_index: int, send: JournalSend) -> None:
        """Record a send before it goes out."""
        self._append(
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
        """Record the conversation a send landed in, as soon as the API names it."""
        self._append(
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

    def _append(self, record: dict) -> None:
        self._write_lines([record])

    def _write_lines(self, records: list[dict]) -> None:
        if self._file is None:
            raise RuntimeError("the send journal is closed")
        os.write(self._file, b"".join(orjson.dumps(record) + b"\n" for record in records))
        os.fsync(self._file)
