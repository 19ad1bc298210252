"""dlt's rest_api source on the export's workload: the off-the-shelf pipeline we compare against.

Run as a child process by export_bench.py:
`python bench/dlt_baseline.py --base-url URL --work-dir DIR [--concurrency 16] [--page-size 100]`
lists every page (page-number paginator), fetches history and messages of each conversation as
parallelized dependent resources with `concurrency` extract workers, then normalizes and loads
into DuckDB with dlt's Parquet loader (or its default one with `--loader default`). Prints one
JSON line: requests, extract (fetch) seconds, extract+normalize+load seconds, CPU seconds.
"""

import argparse
import os
import threading
import time
from pathlib import Path
from typing import Any

from baselines import API_KEY, DETAIL_OPERATIONS, print_result


class ResponseCounter:
    """Counts the HTTP responses dlt receives, from its extract worker threads."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        """A dlt response action: count the response and pass it on unchanged."""
        with self._lock:
            self.count += 1
        return response

    def __deepcopy__(self, memo: dict) -> "ResponseCounter":
        # dlt deep-copies the source config: every copy must count into the same total.
        return self


def conversations_source(base_url: str, page_size: int, counter: ResponseCounter) -> Any:
    """The rest_api source: the list, then history and messages for each listed conversation."""
    from dlt.sources.rest_api import rest_api_source

    def detail_resource(operation: str) -> dict:
        return {
            "name": operation,
            "endpoint": {
                "path": f"v1/conversations/{{resources.conversations.id}}/{operation}",
                "data_selector": "entries" if operation == "history" else "messages",
                "paginator": "single_page",
                "response_actions": [counter],
            },
        }

    return rest_api_source(
        {
            "client": {"base_url": base_url, "auth": {"type": "bearer", "token": API_KEY}},
            "resource_defaults": {"write_disposition": "replace", "parallelized": True},
            "resources": [
                {
                    "name": "conversations",
                    "endpoint": {
                        "path": "v1/conversations",
                        "params": {"page_size": page_size},
                        "data_selector": "$",
                        "paginator": {
                            "type": "page_number",
                            "base_page": 0,
                            "page_param": "page",
                            "total_path": None,
                            "stop_after_empty_page": True,
                        },
                        "response_actions": [counter],
                    },
                },
                *(detail_resource(operation) for operation in DETAIL_OPERATIONS),
            ],
        }
    )


def run_pipeline(
    base_url: str, work_dir: Path, concurrency: int, page_size: int, loader: str
) -> dict:
    """Extract, normalize and load once; time the extract (the fetch) and the whole run."""
    # dlt reads its settings from the environment when the pipeline runs.
    os.environ["EXTRACT__WORKERS"] = str(concurrency)
    os.environ["EXTRACT__MAX_PARALLEL_ITEMS"] = str(concurrency * 2)
    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    import dlt

    counter = ResponseCounter()
    pipeline = dlt.pipeline(
        pipeline_name="conversations_bench",
        pipelines_dir=str(work_dir / "pipelines"),
        destination=dlt.destinations.duckdb(str(work_dir / "dlt.duckdb")),
        dataset_name="conversations",
    )
    source = conversations_source(base_url, page_size, counter)
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    pipeline.extract(source, loader_file_format=None if loader == "default" else loader)
    fetch_s = time.perf_counter() - wall_started
    pipeline.normalize()
    pipeline.load()
    total_s = time.perf_counter() - wall_started
    cpu_s = time.process_time() - cpu_started
    return {"requests": counter.count, "fetch_s": fetch_s, "total_s": total_s, "cpu_s": cpu_s}


def main() -> None:
    """Parse the command line, run the pipeline once, print the result line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--loader", choices=["parquet", "default"], default="parquet")
    args = parser.parse_args()
    result = run_pipeline(
        args.base_url, args.work_dir, args.concurrency, args.page_size, args.loader
    )
    print_result(result)


if __name__ == "__main__":
    main()
