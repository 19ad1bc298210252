"""How a grading reads on the terminal: pass rate, per-variant rates, flaky rows, judge work."""

from flows.evals.grade import GradeReport


def percent(rate: float | None) -> str:
    """A pass rate as '87.5%', '-' when nothing was decided."""
    return "-" if rate is None else f"{rate:.1%}"


def grading_lines(report: GradeReport) -> list[tuple[str, str]]:
    """(label, value) lines of a grading, for a numbers table or a markdown list."""
    lines = [
        (
            "pass rate",
            f"{percent(report.pass_rate)} ({report.passed} of "
            f"{report.passed + report.failed} results)",
        ),
        ("checks graded", str(report.verdicts)),
    ]
    if report.pending:
        lines.append(("pending (llm-rubric, no judge)", str(report.pending)))
    if len(report.variants) > 1:
        lines += [
            (f"pass rate {line['variant']}", percent(line["pass_rate"]))  # type: ignore[arg-type]
            for line in report.variants
        ]
    lines += [
        (
            f"flaky {_row_label(line)}",
            f"passed {line['passed']} of {line['repeats']} repeats",
        )
        for line in report.flaky
    ]
    if report.judge_requests or report.judge_cached:
        lines.append(
            ("judge requests / cached", f"{report.judge_requests} / {report.judge_cached}")
        )
    lines += [("judge error", error) for error in report.judge_errors]
    return lines


def _row_label(line: dict[str, object]) -> str:
    return f"{line['row_id']} ({line['variant']})" if line["variant"] else str(line["row_id"])
