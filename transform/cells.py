"""How a CSV cell is quoted in an error line, shared by every module that validates a CSV."""


def shown(raw: str) -> str:
    """Quote a cell for an error line, cut short so one line stays one line."""
    flat = raw.replace("\n", " ")
    return repr(flat if len(flat) <= 60 else flat[:57] + "...")
