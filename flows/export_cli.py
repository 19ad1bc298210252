"""Export sub-commands (placeholders until the export lands)."""


def export_command() -> None:
    """Export every conversation."""
    raise SystemExit("not built yet")


def sql_command() -> None:
    """Run SQL."""
    raise SystemExit("not built yet")


def schedule_command() -> None:
    """Serve the nightly deployment."""
    raise SystemExit("not built yet")


def demo_command() -> None:
    """Run the demo."""
    raise SystemExit("not built yet")
