"""Parse and validate a prompt-set CSV into replay rows, so nothing is sent from a broken file.

The whole file is checked first; every problem becomes one line naming the file, the row (the
1-based data row, the header not counted) and the column. The caller hands in the bytes.
"""

import csv
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from transform.cells import shown as _shown
from transform.checks import RowChecks, is_eval_column, parse_row_checks
from transform.request_columns import REQUEST_COLUMNS, RequestColumns, parse_request_columns

KNOWN_COLUMNS = (
    "id",
    "prompt",
    "model",
    "agent_id",
    "instructions",
    "name",
    "description",
    "metadata",
    "temperature",
    "top_p",
    "max_tokens",
    "random_seed",
    "thread",
    "conversation_id",
    "from_entry_id",
    *REQUEST_COLUMNS,
)
FLOAT_ARGS = ("temperature", "top_p")
INT_ARGS = ("max_tokens", "random_seed")
# The spec's CompletionArgs bounds; an integer also has to fit the 64 bits a JSON body carries.
ARG_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0, 1),
    "top_p": (0, 1),
    "max_tokens": (0, 2**63 - 1),
    "random_seed": (0, 2**63 - 1),
}
START_ONLY = ("instructions", "name", "description")
MAX_REPORTED_ERRORS = 20


class PromptSetInvalid(ValueError):
    """The prompt CSV failed validation; `errors` holds one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


@dataclass(frozen=True)
class PromptRow:
    """One validated CSV row: what to send, where to send it, and what to keep with the result."""

    row_number: int
    row_id: str
    prompt: str
    model: str | None = None
    agent_id: str | None = None
    instructions: str | None = None
    name: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None
    completion_args: dict[str, Any] = field(default_factory=dict)
    thread: str | None = None
    conversation_id: str | None = None
    from_entry_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    checks: RowChecks = field(default_factory=RowChecks)
    request: RequestColumns = field(default_factory=RequestColumns)
    variant: str = ""  # the model or agent a matrix run sends this copy of the row to

    @property
    def send_key(self) -> str:
        """The row as its sends are journaled and tagged: its id, with its matrix variant."""
        return f"{self.row_id}@{self.variant}" if self.variant else self.row_id


@dataclass(frozen=True)
class PromptSequence:
    """Rows that must run one after another: a thread's turns, or a single row on its own."""

    thread: str | None
    rows: tuple[PromptRow, ...]


def parse_prompts(
    data: bytes,
    source: str,
    default_model: str | None = None,
    default_agent_id: str | None = None,
) -> list[PromptRow]:
    """Validate a whole prompt CSV and return its rows, or raise PromptSetInvalid listing why."""
    errors: list[str] = []
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    # No cell can be longer than the file: the csv module's 131,072-character default refuses
    # long prompts, and raising it to the file's length keeps the C long it is stored in safe.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    records = list(csv.reader(io.StringIO(text, newline="")))
    if not records or not any(cell.strip() for cell in records[0]):
        raise PromptSetInvalid([f"{source}: header: the file is empty (expected a header row)"])
    header = [cell.strip() for cell in records[0]]
    errors.extend(_header_errors(source, header))
    if errors:
        raise PromptSetInvalid(errors)
    data_records = [(n, r) for n, r in enumerate(records[1:], start=1) if any(c.strip() for c in r)]
    if not data_records:
        raise PromptSetInvalid([f"{source}: the file has a header but no rows"])

    rows: list[PromptRow] = []
    seen_ids: dict[str, int] = {}
    thread_started: set[str] = set()
    for number, record in data_records:
        located = _Located(source, number, errors)
        if len(record) > len(header):
            located.fail(None, f"has {len(record)} fields, the header has {len(header)}")
            continue
        cells = dict(zip(header, [*record, *[""] * (len(header) - len(record))], strict=True))
        if not _all_utf8(located, cells):
            continue
        row = _parse_row(located, cells, default_model, default_agent_id, thread_started)
        if row is None:
            continue
        if row.row_id in seen_ids:
            located.fail("id", f"duplicate id '{row.row_id}' (first on row {seen_ids[row.row_id]})")
            continue
        seen_ids[row.row_id] = number
        rows.append(row)
    if errors:
        raise PromptSetInvalid(_capped(errors))
    return rows


def group_sequences(rows: list[PromptRow]) -> list[PromptSequence]:
    """Group rows into sequences: one per thread (turns in file order) and one per loose row."""
    sequences: list[PromptSequence] = []
    thread_index: dict[str, int] = {}
    for row in rows:
        if row.thread is None:
            sequences.append(PromptSequence(None, (row,)))
        elif row.thread in thread_index:
            position = thread_index[row.thread]
            current = sequences[position]
            sequences[position] = PromptSequence(row.thread, (*current.rows, row))
        else:
            thread_index[row.thread] = len(sequences)
            sequences.append(PromptSequence(row.thread, (row,)))
    return sequences


@dataclass
class _Located:
    """Where a value came from, so every error line names the file, row and column."""

    source: str
    row: int
    errors: list[str]

    def fail(self, column: str | None, problem: str) -> None:
        where = f"row {self.row}" if column is None else f"row {self.row}, column {column}"
        self.errors.append(f"{self.source}: {where}: {problem}")


def _header_errors(source: str, header: list[str]) -> list[str]:
    errors = []
    for position, column in enumerate(header, start=1):
        if _has_bad_bytes(column):
            errors.append(f"{source}: header, column {position}: bytes are not valid UTF-8")
        elif not column:
            errors.append(f"{source}: header, column {position}: the column has no name")
        elif header.index(column) != position - 1:
            errors.append(f"{source}: header, column {column}: the column appears twice")
    if "prompt" not in header and "inputs" not in header:
        errors.append(f"{source}: header, column prompt: the required column is missing")
    return errors


# Bytes that are not UTF-8 decode (surrogateescape) to these; one regex scan finds them at C
# speed, where a scan char by char took a third of a 10,000-row file's parse.
_BAD_BYTES = re.compile("[\udc80-\udcff]")


def _has_bad_bytes(value: str) -> bool:
    return _BAD_BYTES.search(value) is not None


def _all_utf8(located: _Located, cells: dict[str, str]) -> bool:
    bad = [column for column, value in cells.items() if _has_bad_bytes(value)]
    for column in bad:
        located.fail(column, "bytes are not valid UTF-8")
    return not bad


def _parse_row(
    located: _Located,
    cells: dict[str, str],
    default_model: str | None,
    default_agent_id: str | None,
    thread_started: set[str],
) -> PromptRow | None:
    before = len(located.errors)

    def value(column: str) -> str | None:
        stripped = cells.get(column, "").strip()
        return stripped or None

    prompt = cells.get("prompt", "")
    if value("inputs") is not None:
        if prompt.strip():
            located.fail("inputs", "a row takes prompt or inputs, not both")
    elif not prompt.strip():
        located.fail("prompt", "the prompt is empty")
    thread = value("thread")
    conversation_id = value("conversation_id")
    from_entry_id = value("from_entry_id")
    if from_entry_id and not conversation_id:
        located.fail("from_entry_id", "from_entry_id needs a conversation_id on the same row")
    later_turn = thread is not None and thread in thread_started
    if later_turn and conversation_id:
        located.fail(
            "conversation_id",
            f"only the first row of thread '{thread}' can name a conversation",
        )
    starts = conversation_id is None and not later_turn
    model, agent_id = value("model"), value("agent_id")
    if model and agent_id:
        located.fail("agent_id", "a row takes model or agent_id, not both")
    if starts and not model and not agent_id:
        model, agent_id = default_model, default_agent_id
        if not model and not agent_id:
            located.fail(
                "model",
                "a row that starts a conversation needs model or agent_id "
                "(or --model / --agent-id)",
            )
    if not starts:
        for column in START_ONLY:
            if value(column):
                located.fail(column, f"only a row that starts a conversation can set {column}")
        if value("metadata") and (later_turn or not from_entry_id):
            located.fail("metadata", "only a row that starts or restarts a conversation can set it")
    metadata = _parse_metadata(located, value("metadata"))
    request = parse_request_columns(
        cells, located.fail, starts, restarts=bool(from_entry_id) and not later_turn
    )
    completion_args = _merged_args(
        located, request.completion_args or {}, _parse_completion_args(located, cells)
    )
    checks = parse_row_checks(cells, located.fail)
    if thread is not None:
        thread_started.add(thread)
    if len(located.errors) > before:
        return None
    return PromptRow(
        row_number=located.row,
        row_id=value("id") or str(located.row),
        prompt=prompt if request.inputs is None else orjson.dumps(request.inputs).decode(),
        model=model,
        agent_id=agent_id,
        instructions=value("instructions"),
        name=value("name"),
        description=value("description"),
        metadata=metadata,
        completion_args=completion_args,
        thread=thread,
        conversation_id=conversation_id,
        from_entry_id=from_entry_id,
        extra={k: v for k, v in cells.items() if k not in KNOWN_COLUMNS and not is_eval_column(k)},
        checks=checks,
        request=request,
    )


def _parse_metadata(located: _Located, raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        located.fail("metadata", f"{_shown(raw)} is not valid JSON")
        return None
    if not isinstance(parsed, dict):
        located.fail("metadata", f"{_shown(raw)} is not a JSON object")
        return None
    return parsed


def _parse_completion_args(located: _Located, cells: dict[str, str]) -> dict[str, float | int]:
    args: dict[str, float | int] = {}
    for column in FLOAT_ARGS:
        raw = cells.get(column, "").strip()
        if not raw:
            continue
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            _put_in_range(located, args, column, raw, number)
        else:
            located.fail(column, f"{_shown(raw)} is not a number")
    for column in INT_ARGS:
        raw = cells.get(column, "").strip()
        if not raw:
            continue
        try:
            whole = int(raw)
        except ValueError:
            located.fail(column, f"{_shown(raw)} is not a whole number")
        else:
            _put_in_range(located, args, column, raw, whole)
    return args


def _put_in_range(
    located: _Located, args: dict[str, float | int], column: str, raw: str, number: float
) -> None:
    """Keep a completion argument inside the API's range; name the range otherwise."""
    low, high = ARG_RANGES[column]
    if low <= number <= high:
        args[column] = number
    else:
        located.fail(column, f"{_shown(raw)} is outside the API's range {low} to {high}")


def _merged_args(
    located: _Located, from_json: dict[str, Any], from_columns: dict[str, float | int]
) -> dict[str, Any]:
    """The completion_args column with the scalar columns added; one key set twice is an error."""
    for key in from_json.keys() & from_columns.keys():
        located.fail(key, f"{key} is also set in completion_args: set it in one place")
    return {**from_json, **from_columns}


def _capped(errors: list[str]) -> list[str]:
    if len(errors) <= MAX_REPORTED_ERRORS:
        return errors
    hidden = len(errors) - MAX_REPORTED_ERRORS
    return [*errors[:MAX_REPORTED_ERRORS], f"... and {hidden} more problems"]
