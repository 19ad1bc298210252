"""Decide which listed conversations need fetching: new ones and those whose updated_at moved."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from transform.timestamps import parse_timestamp


def select_for_fetch(
    page: list[dict], stored_updated_at: Mapping[str, datetime], full: bool
) -> list[dict]:
    """The listed conversations to fetch: all with ``full``, else new or changed since stored."""
    if full:
        return list(page)
    return [
        item
        for item in page
        if item["id"] not in stored_updated_at
        or stored_updated_at[item["id"]] != parse_timestamp(item.get("updated_at"))
    ]
