"""A drill run's report: a table with one line per drill (RTO, lost, duplicates), the figures particular to some
drills below it, and the same as markdown or JSON."""

from __future__ import annotations

from typing import Any

from .drills import DrillResult

COLUMNS = ("drill", "fault", "RTO s", "stall s", "drain s", "lost", "dup", "review", "verdict")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def rows(results: list[DrillResult]) -> list[tuple[str, ...]]:
    table = []
    for result in results:
        times = result.times
        review = result.review.get("in_review", 0)
        table.append(
            (
                result.name,
                result.fault,
                _seconds(times.rto_s if times else None),
                _seconds(times.stall_s if times else None),
                _seconds(times.drain_s if times else None),
                str(result.verdict.lost),
                str(result.verdict.duplicates),
                f"{review} ({result.review.get('at_provider_marked_sent', 0)} sent)" if review else "0",
                "ok" if result.passed else "FAILED",
            )
        )
    return table


def details(result: DrillResult) -> list[str]:
    """The lines under the table that explain one drill's figures."""
    lines = [f"  {name}: {'yes' if held else 'NO'}" for name, held in result.checks.items()]
    figures = {key: value for key, value in result.figures.items() if key not in ("at_dump", "after_restore")}
    lines += [f"  {key}: {value}" for key, value in figures.items()]
    if not result.verdict.ok:
        verdict = result.verdict
        lines.append(
            f"  {verdict.lost} lost (by status {verdict.lost_by_status}, {verdict.sent_but_not_received} recorded "
            f"sent), {verdict.duplicates} duplicates, {verdict.unknown_receipts} receipts for unknown numbers"
        )
    lines += [f"  finding: {finding}" for finding in result.findings]
    return [f"{result.name}:", *lines] if lines else []


def header(info: dict[str, Any]) -> list[str]:
    settings = ", ".join(f"{name}={value}" for name, value in info["settings"].items())
    return [
        f"Tidings recovery drills: {info['date']}, {info['mode']} mode, {info['messages']:,} SMS per drill, "
        f"{info['workers']} workers, fake Twilio answering in {info['latency_s'] * 1000:.0f} ms, "
        f"PostgreSQL {info['postgres']}",
        f"Settings: {settings}",
    ]


def text(results: list[DrillResult], info: dict[str, Any]) -> str:
    table = [COLUMNS, *rows(results)]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    lines = [*header(info), ""]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table]
    explained = [line for result in results for line in details(result)]
    return "\n".join([*lines, *([""] + explained if explained else [])]) + "\n"


def markdown(results: list[DrillResult], info: dict[str, Any]) -> str:
    lines = [*(f"{line}  " for line in header(info)), ""]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    explained = [line for result in results for line in details(result)]
    if explained:
        lines += ["", "```", *explained, "```"]
    return "\n".join(lines) + "\n"


def as_json(results: list[DrillResult], info: dict[str, Any]) -> dict[str, Any]:
    return {
        **info,
        "passed": all(result.passed for result in results),
        "drills": [
            {
                "name": result.name,
                "fault": result.fault,
                "passed": result.passed,
                "verdict": result.verdict.as_dict(),
                "times": None if result.times is None else vars(result.times),
                "review": result.review,
                "figures": result.figures,
                "checks": result.checks,
                "findings": result.findings,
            }
            for result in results
        ],
    }
