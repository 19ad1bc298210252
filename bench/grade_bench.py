"""How fast the deterministic checks grade: 1,000,000 stored results, 4 checks each.

The results are an Arrow table with the replay_results columns the checks read (100,000 rows
replayed 10 times, each row with its own expected text); every result gets `contains`, `regex`,
`max-tokens` and `latency`. Building the table is not timed; grading (join, the four check
expressions, the verdict rows) is, best of three runs, and printed as checks per second. The
prompt set's checks frame is built once per set, so it is timed apart. CPU time is shown too: on
a shared machine it moves less than the wall clock.
"""

import time
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa

from transform.checks import Check, RowChecks
from transform.grading import checks_frame, grade

ROWS = 100_000
REPEATS = 10
RUNS = 3
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


def stored_results() -> pa.Table:
    """Outputs of ~200 characters; about one in ten misses its expected word or a limit."""
    count = ROWS * REPEATS
    row = [i % ROWS for i in range(count)]
    outputs = [
        f"Answer {r}: the {WORDS[(r + i // ROWS // 9) % 8]} team wins. " + "lorem ipsum " * 12
        for i, r in enumerate(row)
    ]
    return pa.table(
        {
            "run_id": pa.array(["bench"] * count),
            "row_id": pa.array([f"row-{r}" for r in row]),
            "repeat_index": pa.array([i // ROWS for i in range(count)], pa.int32()),
            "status": pa.array(["ok"] * count),
            "error": pa.array([None] * count, pa.string()),
            "output_text": pa.array(outputs),
            "completion_tokens": pa.array([40 + i % 30 for i in range(count)], pa.int64()),
            "prompt_tokens": pa.array([20] * count, pa.int64()),
            "latency_ms": pa.array([float(200 + i % 900) for i in range(count)]),
            "ttft_ms": pa.array([float(50 + i % 100) for i in range(count)]),
            "model": pa.array(["mistral-small-latest"] * count),
        }
    )


def bench_checks() -> dict[str, RowChecks]:
    return {
        f"row-{r}": RowChecks(
            (
                Check(0, "__expected", "contains", WORDS[r % 8]),
                Check(1, "__expected1", "regex", r"^Answer \d+:"),
                Check(2, "__expected2", "max-tokens", "65", number=65.0),
                Check(3, "__expected3", "latency", "1000", number=1000.0),
            )
        )
        for r in range(ROWS)
    }


def main() -> None:
    table = stored_results()
    started = time.perf_counter()
    checks = checks_frame(bench_checks())
    framed = time.perf_counter() - started
    best, best_cpu = float("inf"), float("inf")
    for _ in range(RUNS):
        started, started_cpu = time.perf_counter(), time.process_time()
        verdicts = grade(pl.from_arrow(table), checks, datetime.now(UTC))
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, time.process_time() - started_cpu)
    passed = verdicts["pass"].sum()
    print(
        f"checks frame of {checks.height:,} checks built once in {framed:.2f} s (not in the rate)"
    )
    print(f"{table.num_rows:,} results, {verdicts.height:,} checks ({passed:,} passed)")
    print(f"best of {RUNS}: {best:.2f} s, {verdicts.height / best:,.0f} checks/s")
    per_cpu_second = verdicts.height / best_cpu
    print(f"CPU (all threads): {best_cpu:.2f} s, {per_cpu_second:,.0f} checks per CPU second")


if __name__ == "__main__":
    main()
