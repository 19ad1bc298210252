"""A flow run's API key: from the Prefect Secret block its parameters name, else MISTRAL_API_KEY.

Several workspaces run on the same workers, each with its own key, so the key cannot come from the
worker's environment; it cannot be a parameter either (Prefect stores and shows parameters). The
parameter names a Secret block, and the run reads the block when it starts and holds the key
only in memory (flows.settings.api_key_for_runs, never os.environ).
"""

from __future__ import annotations

from pathlib import Path

from prefect.blocks.system import Secret

from flows.settings import Settings, api_key_for_runs, load_settings


class KeySecretMissing(Exception):
    """The named Secret block cannot be read or holds no key; the message is one line."""


async def secret_key(name: str) -> str:
    """The key held by the Secret block ``name``."""
    try:
        block = await Secret.aload(name)
    except ValueError:
        raise KeySecretMissing(
            f"no Prefect Secret block named {name!r}: create it with "
            f"`MISTRAL_API_KEY=... convo-etl key-secret {name}`"
        ) from None
    key = block.value.get_secret_value()
    if not isinstance(key, str) or not key.strip():
        raise KeySecretMissing(f"the Prefect Secret block {name!r} holds no API key (a string)")
    return key


async def run_settings(
    data_dir: str | Path | None, base_url: str | None, api_key_secret: str | None
) -> Settings:
    """The run's settings, keyed by the Secret block ``api_key_secret`` when one is named."""
    if api_key_secret is None:
        return load_settings(data_dir, base_url)
    with api_key_for_runs(await secret_key(api_key_secret)):
        return load_settings(data_dir, base_url)
