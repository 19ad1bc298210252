"""Replay sub-commands (placeholders until the replay lands)."""


def replay_command() -> None:
    """Replay a prompt set."""
    raise SystemExit("not built yet")


def replay_report_command() -> None:
    """Write a replay report."""
    raise SystemExit("not built yet")
