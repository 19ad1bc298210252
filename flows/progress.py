"""What a run shows on the terminal: a progress bar on stderr and a closing numbers table.

The export and the replay share the look: their own columns first, then elapsed time and ETA;
their numbers as a two-column table, labels left and values right.
"""

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


def progress_bar(label: ProgressColumn, *counts: ProgressColumn, visible: bool) -> Progress:
    """A bar on stderr: the label, the bar, done of total, the caller's counts, elapsed and ETA."""
    return Progress(
        label,
        BarColumn(),
        MofNCompleteColumn(),
        *counts,
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not visible,
    )


def numbers_table(title: str, rows: list[tuple[str, str]]) -> Table:
    """A run's closing (label, value) pairs as a titled table without a header."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    for label, value in rows:
        table.add_row(label, value)
    return table
