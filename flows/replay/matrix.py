"""Matrix runs: `--model A --model B` (or several `--agent-id`) send the prompt set once per
variant within one run; each result carries its variant ('' when the run has none)."""

from dataclasses import replace

from transform.prompts import PromptRow, parse_prompts

NO_VARIANT = ""
Variant = tuple[str, str | None, str | None]  # (variant, default model, default agent)


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def matrix_variants(
    model: str | list[str] | None, agent_id: str | list[str] | None
) -> list[Variant]:
    """The run's variants: one per model and agent when there are several, else one named ''."""
    models, agents = _as_list(model), _as_list(agent_id)
    if len(models) + len(agents) <= 1:
        return [(NO_VARIANT, models[0] if models else None, agents[0] if agents else None)]
    duplicates = {name for name in [*models, *agents] if [*models, *agents].count(name) > 1}
    if duplicates:
        raise ValueError(f"a matrix names {', '.join(sorted(duplicates))} twice")
    return [(name, name, None) for name in models] + [(name, None, name) for name in agents]


def variant_rows(
    data: bytes, source: str, variant: str, model: str | None, agent_id: str | None
) -> list[PromptRow]:
    """The prompt set as one variant sends it: its model or agent for rows that name none."""
    rows = parse_prompts(data, source, model, agent_id)
    return rows if variant == NO_VARIANT else [replace(row, variant=variant) for row in rows]
