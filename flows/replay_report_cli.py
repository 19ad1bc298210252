"""Replay report sub-command (placeholder until the report lands)."""


def replay_report_command() -> None:
    """Write a replay report."""
    raise SystemExit("not built yet")
