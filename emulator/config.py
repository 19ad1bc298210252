"""The emulator's knobs, in one mutable dataclass so tests can change them while it runs."""

from dataclasses import dataclass, fields


@dataclass
class EmulatorConfig:
    """What the emulator serves and how it misbehaves; every field is read per request.

    docs/emulator.md describes each knob; the defaults behave like the live API where it is
    inconvenient (function calls end the turn, 429s carry Retry-After) and add no faults.
    """

    conversations: int = 50
    seed: int = 0
    api_key: str | None = None
    latency_ms: float = 0.0
    token_delay_ms: float = 0.0
    rps: float | None = None
    fault_rate: float = 0.0
    stream_cut_rate: float = 0.0
    stream_error_rate: float = 0.0
    function_calls_end_turn: bool = True
    thinking_chunks: bool = True
    generation_ms: float = 0.0
    fault_after_commit_rate: float = 0.0
    rate_limit_retry_after: bool = True

    def __repr__(self) -> str:
        """Show every knob but never the API key itself."""
        shown = []
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "api_key" and value is not None:
                value = "***"
            shown.append(f"{field.name}={value!r}")
        return f"EmulatorConfig({', '.join(shown)})"
