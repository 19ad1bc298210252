"""Render a run comparison as one self-contained HTML page, in the replay report's style, with
a word diff of the outputs of every regressed row."""

import difflib
import re
from typing import Any

import markupsafe
import polars as pl

from load.replay_report_html import report_environment

TEMPLATE_NAME = "replay_compare.html.j2"
_TOKEN = re.compile(r"\s+|\S+")


def output_diff(before: str | None, after: str | None) -> markupsafe.Markup:
    """The word diff of two outputs: removed words in <del>, added words in <ins>, all escaped."""
    old, new = _TOKEN.findall(before or ""), _TOKEN.findall(after or "")
    parts: list[markupsafe.Markup] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        removed, added = "".join(old[a_start:a_end]), "".join(new[b_start:b_end])
        if op == "equal":
            parts.append(markupsafe.escape(removed))
            continue
        if removed:
            parts.append(markupsafe.Markup("<del>{}</del>").format(removed))
        if added:
            parts.append(markupsafe.Markup("<ins>{}</ins>").format(added))
    return markupsafe.Markup("").join(parts)


def render_compare_html(
    baseline: str,
    runs: pl.DataFrame,
    changes: pl.DataFrame,
    variants: pl.DataFrame,
    flaky: pl.DataFrame,
) -> str:
    """The whole comparison page; every piece of data HTML-escaped."""
    changed: list[dict[str, Any]] = [
        change | {"diff": output_diff(change["baseline_output"], change["output"])}
        for change in changes.to_dicts()
    ]
    run_ids = runs["run_id"].to_list()
    variant_names = sorted(set(variants["variant"].to_list()))
    rates = {(line["run_id"], line["variant"]): line for line in variants.to_dicts()}
    template = report_environment().get_template(TEMPLATE_NAME)
    return template.render(
        baseline=baseline,
        runs=runs.to_dicts(),
        changes=changed,
        run_ids=run_ids,
        variant_names=variant_names,
        rates=rates,
        flaky=flaky.to_dicts(),
    )
