"""Counted nouns for messages a user reads: "1 conversation", "2 conversations", "1,000 rows"."""


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` with ``noun`` in the singular for exactly one, else in the plural (noun + s)."""
    word = noun if count == 1 else plural or f"{noun}s"
    return f"{count:,} {word}"
