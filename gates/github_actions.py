"""The gate inside GitHub Actions: a `gatewatch gate check` step writes the decision to the step's
outputs (`decision`, `decision_id`) and a Markdown table of its checks and actions to the job summary
(the files GitHub names in GITHUB_OUTPUT and GITHUB_STEP_SUMMARY, read by `collector.config`)."""

from __future__ import annotations

from typing import Any

from collector.config import GithubActions

__all__ = ["summary_markdown", "write_step_outputs"]


def summary_markdown(decision: dict[str, Any]) -> str:
    """The job summary of a decision (as `gate check --json` prints it): the decision, its checks and actions."""
    lines = [
        f"### Gate `{decision['gate']}`: **{decision['decision']}**",
        "",
        "| check | status | effect | reason |",
        "|---|---|---|---|",
    ]
    lines += [f"| {c['name']} | {c['status']} | {c['effect']} | {_cell(c['reason'])} |" for c in decision["checks"]]
    if decision["actions"]:
        lines += ["", "| action | target | status | detail |", "|---|---|---|---|"]
        lines += [
            f"| {a['type']} | {a.get('target') or '-'} | {a['status']} | "
            f"{_cell(a.get('detail') or a.get('error') or '')} |"
            for a in decision["actions"]
        ]
    return "\n".join(lines) + "\n"


def _cell(text: Any) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def write_step_outputs(decision: dict[str, Any], where: GithubActions) -> None:
    """Append `decision=...` and `decision_id=...` to the step's outputs and the summary to the job's
    summary, where GitHub Actions gives those files (nothing elsewhere)."""
    if where.output:
        with open(where.output, "a", encoding="utf-8") as out:
            out.write(f"decision={decision['decision']}\ndecision_id={decision['id']}\n")
    if where.step_summary:
        with open(where.step_summary, "a", encoding="utf-8") as out:
            out.write(summary_markdown(decision))
