"""Replay sub-command (placeholder until the replay lands)."""


def replay_command() -> None:
    """Replay a prompt set."""
    raise SystemExit("not built yet")
