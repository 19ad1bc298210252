"""Measure how many history entries per second the export transform turns into Arrow tables.

Takes the emulator's deterministic synthetic conversations (every entry type and content form:
string and chunk content, thinking chunks, string and object arguments, handoffs, null
completed_at, unicode and 24k-character texts), flattens them with the batch functions the
export flow uses, and prints entries/s against the 200,000/s target.
"""

import argparse
import time
from collections.abc import Callable

from emulator.formats import DAY_US
from emulator.synthetic import synthetic_conversation, synthetic_history
from transform.conversations import flatten_conversations
from transform.entries import flatten_histories, flatten_histories_chunks

TARGET_ENTRIES_PER_SECOND = 200_000
# A fixed end of the synthetic timeline (2024-10-04), so every run flattens the same data.
_END_US = 20_000 * DAY_US


def synthetic_batch(conversations: int, seed: int) -> tuple[list[dict], list[tuple[str, list]]]:
    """The emulator's first ``conversations`` headers and their (id, entries) histories."""
    headers = [
        synthetic_conversation(seed, i, conversations, _END_US) for i in range(conversations)
    ]
    histories = [(h["id"], synthetic_history(seed, i, h)) for i, h in enumerate(headers)]
    return headers, histories


def _best_seconds(repeats: int, run: Callable[[], object]) -> tuple[float, float]:
    """The least wall and CPU seconds of ``repeats`` calls (other processes share the cores)."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        wall_started, cpu_started = time.perf_counter(), time.process_time()
        run()
        wall = min(wall, time.perf_counter() - wall_started)
        cpu = min(cpu, time.process_time() - cpu_started)
    return wall, cpu


def main() -> None:
    """Flatten the synthetic conversations batch by batch, as the export flow does; print rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=500, help="the flow's default is 500")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    headers, histories = synthetic_batch(args.conversations, args.seed)
    size = args.batch_size
    batches = [
        (headers[start : start + size], histories[start : start + size])
        for start in range(0, len(headers), size)
    ]
    entries = sum(len(e) for _, e in histories)
    chunks = sum(flatten_histories_chunks(h, "bench").num_rows for _, h in batches)
    print(
        f"{len(headers):,} conversations in batches of {size}: "
        f"{entries:,} entries, {chunks:,} content chunks"
    )
    entries_s = _best_seconds(
        args.repeats, lambda: [flatten_histories(h, "bench") for _, h in batches]
    )
    chunks_s = _best_seconds(
        args.repeats, lambda: [flatten_histories_chunks(h, "bench") for _, h in batches]
    )
    headers_s = _best_seconds(
        args.repeats, lambda: [flatten_conversations(c, "bench") for c, _ in batches]
    )
    target = TARGET_ENTRIES_PER_SECOND
    for clock, index in (("wall", 0), ("CPU", 1)):
        rate = entries / entries_s[index]
        with_chunks = entries / (entries_s[index] + chunks_s[index])
        print(
            f"{clock:>4}: flatten_histories {rate:,.0f} entries/s ({rate / target:.2f}x target), "
            f"with chunks {with_chunks:,.0f}/s ({with_chunks / target:.2f}x), "
            f"flatten_conversations {len(headers) / headers_s[index]:,.0f} conversations/s"
        )


if __name__ == "__main__":
    main()
