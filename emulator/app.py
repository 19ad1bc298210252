"""The emulator as one ASGI app: the gate in front of the operations' router."""

from starlette.types import ASGIApp

from emulator.config import EmulatorConfig
from emulator.gate import Gate
from emulator.routes import ConversationsApi
from emulator.store import ConversationStore


def build_app(store: ConversationStore, config: EmulatorConfig) -> ASGIApp:
    """The ASGI app serving `store`, reading its knobs from `config` on every request."""
    return Gate(ConversationsApi(store, config).router(), config, store)
