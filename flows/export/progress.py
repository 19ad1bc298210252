"""A progress bar on stderr: conversations fetched of those chosen so far, rate and ETA."""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType

from rich.progress import Progress, TaskID, TextColumn

from flows.progress import progress_bar


class ExportProgress(AbstractContextManager["ExportProgress"]):
    """Counts fetched conversations against a total that grows while listing goes on."""

    def __init__(self, visible: bool) -> None:
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if visible:
            self._progress = progress_bar(
                TextColumn("[bold]{task.description}"),
                TextColumn("{task.fields[rate]}"),
                visible=True,
            )
            self._task = self._progress.add_task("listing", total=0, rate="")

    def __enter__(self) -> ExportProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def chosen(self, count: int) -> None:
        """Grow the total by conversations newly chosen for fetching."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=self._total() + count)

    def listing_done(self) -> None:
        """Mark the total as final."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description="fetching")

    def advance(self) -> None:
        """Count one conversation fetched (or failed)."""
        if self._progress is None or self._task is None:
            return
        self._progress.advance(self._task, 1)
        task = self._progress.tasks[self._task]
        rate = f"{task.completed / task.elapsed:,.0f} conv/s" if task.elapsed else ""
        self._progress.update(self._task, rate=rate)

    def _total(self) -> float:
        """The current total of the single task."""
        assert self._progress is not None and self._task is not None
        return self._progress.tasks[self._task].total or 0
