"""The report of an autograde run: ``reports/<assignment>-<timestamp>.json`` and ``.md``.

It holds the scores per student and test (verified and nbgrader's), the failures grouped by
misconception, and the submissions flagged as suspicious with the evidence. Every report is
recorded in ``reports/runs.json`` (which run wrote it, when, its SHA-256 and the students it
graded); ``course feedback`` reads an assignment's reports in the order of that record, never by
file name, and refuses a report whose content no longer matches its record.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from pathlib import Path

from course_lib.grading import checks
from course_lib.grading.autograde import AutogradeRun
from course_lib.grading.verify import diagnosis_of

__all__ = [
    "ReportError",
    "latest_report",
    "report_data",
    "summary_table",
    "write_report",
]

MANIFEST = "runs.json"


class ReportError(RuntimeError):
    """A report that is not the one its run recorded."""


#: Flags that make a submission suspicious (others, like kernel-lost-points, are informational).
SUSPICIOUS = {
    "ipython-transformer",
    "exception-handler",
    "ipython-hook",
    "patches-checker",
    "ends-process",
    "reads-course-files",
    "reads-files",
    "tracing",
    "forbidden-call",
    "sandbox-denied",
    "tamper-suspected",
    "dynamic-code",
    "introspection",
    "protocol-violation",
    "refused-submission",
    "suspicious-code",
}


def report_data(run: AutogradeRun) -> dict:
    """The run as plain data (what the JSON report holds)."""
    tests = checks.test_ids(run.assignment)
    students = {}
    misconceptions: dict[str, list[dict]] = defaultdict(list)
    suspicious = {}
    for name, result in sorted(run.results.items()):
        v = result.verification
        per_test = {}
        for test_id in tests:
            verified = v.tests.get(test_id) if v else None
            per_test[test_id] = {
                "function": verified.function if verified else "",
                "points": verified.points if verified else 0.0,
                "max_points": float(checks.POINTS.get(test_id, 0.0)),
                "nbgrader_points": result.nbgrader_scores.get(test_id),
                "message": verified.message if verified else "no submitted notebook",
                "diagnosis": verified.diagnosis if verified else None,
            }
            if verified and verified.message:
                key = verified.diagnosis or diagnosis_of(verified.message) or "undiagnosed"
                misconceptions[key].append(
                    {"student": name, "test": test_id, "message": verified.message}
                )
        flags = [{"kind": f.kind, "detail": f.detail, "evidence": f.evidence} for f in result.flags]
        students[name] = {
            "score": result.score,
            "max_score": sum(checks.POINTS.get(t, 0.0) for t in tests),
            "nbgrader_score": result.nbgrader_score,
            "nbgrader_success": result.nbgrader_success,
            "nbgrader_error": result.nbgrader_error[-1000:],
            "seed": v.seed if v else None,
            "tests": per_test,
            "flags": flags,
            "incidents": v.incidents if v else [],
            "cell_errors": v.cell_errors if v else {},
            "output_bytes": v.output_bytes if v else 0,
            "seconds": round(result.seconds, 3),
            "error": result.error,
            "worker": result.worker,
        }
        bad = [f for f in flags if f["kind"] in SUSPICIOUS]
        if bad:
            suspicious[name] = bad
    return {
        "assignment": run.assignment,
        "run_id": run.run_id,
        "started": run.started,
        "jobs": run.jobs,
        "executor": run.executor,
        "refused": dict(sorted(run.refused.items())),
        "seconds": round(run.seconds, 3),
        "gradebook_tampered": run.gradebook_tampered,
        "tests": tests,
        "students": students,
        "misconceptions": dict(sorted(misconceptions.items())),
        "suspicious": suspicious,
    }


def summary_table(data: dict) -> str:
    """A fixed-width table: one row per student, verified and nbgrader's scores, flags."""
    rows = [("student", "verified", "nbgrader", "flags")]
    for name, s in data["students"].items():
        kinds = sorted({f["kind"] for f in s["flags"] if f["kind"] in SUSPICIOUS})
        rows.append(
            (
                name,
                f"{s['score']:g}/{s['max_score']:g}",
                f"{s['nbgrader_score']:g}",
                ", ".join(kinds) or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _markdown(data: dict) -> str:
    out = [f"# Autograde report: {data['assignment']} ({data['started']})", ""]
    out.append(
        f"{len(data['students'])} submissions, {data['jobs']} workers, {data['seconds']:.1f} s. "
        "Scores are the verified ones (run outside the student's kernel); nbgrader's own score "
        "is shown for comparison."
    )
    if data["gradebook_tampered"]:
        out += ["", "**The gradebook was changed during the run by something else; restored.**"]
    out += ["", "## Scores", ""]
    tests = data["tests"]
    out.append("| student | " + " | ".join(tests) + " | total | nbgrader |")
    out.append("|---" * (len(tests) + 3) + "|")
    for name, s in data["students"].items():
        cells = [f"{s['tests'][t]['points']:g}" for t in tests]
        out.append(
            f"| {name} | " + " | ".join(cells) + f" | {s['score']:g}/{s['max_score']:g} | "
            f"{s['nbgrader_score']:g} |"
        )
    out += ["", "## Failures by misconception", ""]
    if not data["misconceptions"]:
        out.append("None.")
    for key, items in data["misconceptions"].items():
        out.append(f"### {key} ({len(items)})")
        out.append("")
        for item in items:
            text = " ".join(item["message"][:400].split())
            out.append(f"- {item['student']}, {item['test']}: {text}")
        out.append("")
    out += ["", "## Suspicious submissions", ""]
    if not data["suspicious"]:
        out.append("None.")
    for name, flags in data["suspicious"].items():
        out.append(f"### {name}")
        out.append("")
        for flag in flags:
            out.append(f"- **{flag['kind']}**: {flag['detail']}. Evidence: `{flag['evidence']}`")
        out.append("")
    incidents = {n: s["incidents"] for n, s in data["students"].items() if s["incidents"]}
    if incidents:
        out += ["", "## Runs that did not finish", ""]
        for name, items in incidents.items():
            out.append(f"- {name}: " + "; ".join(items))
    return "\n".join(out).rstrip() + "\n"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _manifest(folder: Path) -> list[dict]:
    path = folder / MANIFEST
    if not path.is_file():
        return []
    entries = json.loads(path.read_text())
    if not isinstance(entries, list):
        raise ReportError(f"{path} is not a list of runs")
    return entries


def write_report(run: AutogradeRun, root: Path) -> tuple[Path, Path]:
    """Write ``reports/<assignment>-<timestamp>.json`` and ``.md`` and record them in
    ``reports/runs.json``; return both paths."""
    data = report_data(run)
    folder = Path(root) / "reports"
    folder.mkdir(exist_ok=True)
    stem = folder / f"{run.assignment}-{run.started}"
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    body = json.dumps(data, indent=1, default=str).encode()
    _write_atomically(json_path, body)
    _write_atomically(md_path, _markdown(data).encode())
    entries = _manifest(folder)
    entries.append(
        {
            "run_id": run.run_id,
            "assignment": run.assignment,
            "started": run.started,
            "report": json_path.name,
            "markdown": md_path.name,
            "sha256": _digest(body),
            "students": sorted(data["students"]),
        }
    )
    _write_atomically(folder / MANIFEST, json.dumps(entries, indent=1).encode())
    return json_path, md_path


def latest_report(root: Path, assignment: str) -> dict:
    """The newest report of ``assignment``, with each student's newest result from any of its
    reports (a run may have graded only some students), in the order ``runs.json`` records
    them. Files in ``reports/`` that no run recorded are ignored."""
    folder = Path(root) / "reports"
    runs = [e for e in _manifest(folder) if e.get("assignment") == assignment]
    if not runs:
        raise FileNotFoundError(
            f"no report for {assignment!r} in reports/: run `course autograde {assignment}` first"
        )
    students: dict[str, dict] = {}
    data: dict = {}
    for entry in runs:
        name = str(entry.get("report", ""))
        path = folder / name
        if Path(name).name != name or not path.is_file() or path.is_symlink():
            raise ReportError(f"the report {name!r} recorded in {MANIFEST} is missing")
        body = path.read_bytes()
        if _digest(body) != entry.get("sha256"):
            raise ReportError(
                f"reports/{name} is not the report its run wrote (its content changed): "
                f"run `course autograde {assignment}` again"
            )
        data = json.loads(body)
        students.update(data["students"])
    data["students"] = dict(sorted(students.items()))
    return data
