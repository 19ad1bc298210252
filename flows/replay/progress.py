"""The live progress of a replay on stderr: rows done of total, ok / error counts, rate and ETA."""

import time

from rich.progress import TaskProgressColumn, TextColumn

from flows.progress import progress_bar


class RunProgress:
    """A rich progress bar on stderr: rows done of total, ok / error counts, rate and ETA."""

    def __init__(self, total: int, visible: bool) -> None:
        self.ok = 0
        self.errors = 0
        self._bar = progress_bar(
            TextColumn("replay"),
            TaskProgressColumn(),
            TextColumn("[green]{task.fields[ok]} ok[/] [red]{task.fields[errors]} errors[/]"),
            TextColumn("{task.fields[rate]}"),
            visible=visible,
        )
        self._task = self._bar.add_task("replay", total=total, ok=0, errors=0, rate="")
        self._started = time.perf_counter()

    def __enter__(self) -> "RunProgress":
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def finished(self, ok: bool) -> None:
        """Count a row that ended (ok, error, or skipped as already ok)."""
        if ok:
            self.ok += 1
        else:
            self.errors += 1
        done = self.ok + self.errors
        rate = done / max(time.perf_counter() - self._started, 1e-9)
        self._bar.update(
            self._task, completed=done, ok=self.ok, errors=self.errors, rate=f"{rate:.1f} rows/s"
        )
