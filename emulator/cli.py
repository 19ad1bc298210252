"""`convo-etl emulator`: serve the local emulator (placeholder until the emulator lands)."""


def emulator_command() -> None:
    """Serve the emulator."""
    raise SystemExit("not built yet")
