"""What an export's parameters ask for: its client's configuration and the run's options.

Built in one place for the flow run and for the head start it may adopt (flows.export.head_start),
which must be asked the same to be adopted.
"""

from __future__ import annotations

from extract.client import ClientConfig
from flows.export.pipeline import ExportOptions
from flows.settings import ClientLimits, Settings, checked_workspace


def run_client_config(
    settings: Settings, concurrency: int, rps: float | None, limits: ClientLimits
) -> ClientConfig:
    """The client's configuration: the settings' API and key, with the run's limits."""
    return settings.api.client_config(concurrency=concurrency, rps=rps, **limits.config_fields())


def run_options(
    settings: Settings,
    *,
    full: bool,
    conversation_ids: list[str] | None,
    batch_size: int,
    max_failures: int,
    show_progress: bool,
    purge_deleted: bool,
    workspace: str,
) -> ExportOptions:
    """What the run was asked to do, its workspace name checked."""
    return ExportOptions(
        data_dir=settings.data_dir,
        full=full,
        conversation_ids=conversation_ids or [],
        batch_size=batch_size,
        max_failures=max_failures,
        show_progress=show_progress,
        base_url=settings.api.base_url,
        purge_deleted=purge_deleted,
        workspace=checked_workspace(workspace),
    )
