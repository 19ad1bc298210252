"""The emulator's knobs, in one mutable dataclass so tests can change them while it runs."""

from dataclasses import dataclass


@dataclass
class EmulatorConfig:
    """What the emulator serves and how it misbehaves; every field is read per request."""

    conversations: int = 50
    seed: int = 0
    api_key: str | None = None
    latency_ms: float = 0.0
    token_delay_ms: float = 0.0
    rps: float | None = None
    fault_rate: float = 0.0
    stream_cut_rate: float = 0.0
    stream_error_rate: float = 0.0

    def __repr__(self) -> str:
        """Show every knob but never the API key itself."""
        key = "None" if self.api_key is None else "'***'"
        return (
            f"EmulatorConfig(conversations={self.conversations}, seed={self.seed}, "
            f"api_key={key}, latency_ms={self.latency_ms}, token_delay_ms={self.token_delay_ms}, "
            f"rps={self.rps}, fault_rate={self.fault_rate}, "
            f"stream_cut_rate={self.stream_cut_rate}, "
            f"stream_error_rate={self.stream_error_rate})"
        )
