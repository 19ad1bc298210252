"""The export as a Prefect deployment on a work pool: its workers run one flow run per workspace.

A process worker runs each flow run from the deployment's source directory (this project's
checkout, or another path holding it), in the worker's own Python environment; nothing is built
or pushed. The deployment's parameters name the key's Secret block, never the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.blocks.system import Secret

from flows.export.flow import export_conversations

PROJECT_DIR = Path(__file__).resolve().parent.parent
ENTRYPOINT = "flows/export/flow.py:export_conversations"


class DeployFailed(Exception):
    """The deployment could not be made; the message is one line."""


def deploy_export(
    name: str, pool: str, cron: str, parameters: dict[str, Any], source: Path = PROJECT_DIR
) -> UUID:
    """Create or update the deployment ``name`` of export_conversations on the work pool
    ``pool``, run on ``cron``; returns its id."""
    if not (source / ENTRYPOINT.split(":")[0]).is_file():
        raise DeployFailed(f"{source} holds no {ENTRYPOINT.split(':')[0]}: give the project's path")
    flow = export_conversations.from_source(source=str(source), entrypoint=ENTRYPOINT)
    try:
        return flow.deploy(
            name=name,
            work_pool_name=pool,
            cron=cron,
            parameters=parameters,
            build=False,
            push=False,
            print_next_steps=False,
            ignore_warnings=True,
        )
    except ValueError as error:
        if "Could not find work pool" in str(error):
            raise DeployFailed(
                f"no work pool named {pool!r}: create it with "
                f"`prefect work-pool create {pool} --type process`"
            ) from None
        raise


def save_key_secret(name: str, key: str) -> None:
    """Store ``key`` in the Prefect Secret block ``name`` (replacing its value)."""
    Secret(value=key).save(name, overwrite=True)
