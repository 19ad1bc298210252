"""Where this process's Prefect API is, and a word to the user before a temporary one starts."""

from prefect.settings import get_current_settings
from rich.console import Console


def prefect_api_url() -> str | None:
    """The Prefect API this process talks to, or None when Prefect will start a temporary one."""
    return get_current_settings().api.url


def announce_prefect_start(console: Console) -> None:
    """Say that a temporary Prefect server is starting, so its 10-20 s don't look like a hang."""
    if prefect_api_url() is None:
        console.print(
            "starting Prefect (a temporary local server, 10-20 s; set PREFECT_API_URL to use "
            "a running one)...",
            highlight=False,
        )
