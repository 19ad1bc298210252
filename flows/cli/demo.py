"""`convo-etl demo`: the export, twice, against a local emulator; no API key needed."""

from typing import Annotated

import typer
from rich.console import Console

from flows.cli.errors import CliError
from flows.cli.options import DataDir
from flows.export.demo import DemoRefused, run_demo
from flows.export.query import QueryFailed
from flows.export.run import ExportFailed
from flows.prefect_api import PrefectServerFailed
from flows.settings import DEFAULT_DATA_DIR


def demo_command(
    conversations: Annotated[
        int, typer.Option(min=1, help="Synthetic conversations the emulator serves.")
    ] = 2000,
    changes: Annotated[
        int, typer.Option(min=0, help="Conversations to change before the second run.")
    ] = 25,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Export from a local emulator twice (full, then incremental) and show the analytics.

    It uses the emulator's own key, never MISTRAL_API_KEY.
    """
    try:
        run_demo(conversations, changes, data_dir, Console())
    except (DemoRefused, ExportFailed, PrefectServerFailed, QueryFailed) as error:
        raise CliError(str(error)) from None
