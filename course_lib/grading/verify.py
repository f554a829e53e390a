"""Grade a submitted notebook where the student's code never runs in the grader's process.

:func:`verify_notebook` takes the answer cells of a submission (the cells whose nbgrader
``grade_id`` names a function of the assignment), makes the test cases with
``checks.make_cases`` here, in the trusted process, from a fresh recorded seed, runs the cells
and the calls in :mod:`course_lib.grading.sandbox`, and judges what came back with
``checks.judge`` here. A test earns its points when every one of its cases passes.

:func:`scan_source` reads every code cell of a submission for code that tampers with grading
(IPython input/AST transformers, custom exception handlers, patched checkers, ending the
process, reading course files) and returns what it found as :class:`Flag` evidence.
"""

from __future__ import annotations

import ast
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
import numpy as np

from course_lib.grading import checks
from course_lib.grading.sandbox import Call, Limits, SandboxRun, Unsupported, run_functions
from course_lib.grading.static import (
    SAFE_STDLIB,
    CodePolicy,
    Finding,
    check_cell,
    suspicious_code,
)

__all__ = [
    "Flag",
    "TestResult",
    "Verification",
    "answer_cells",
    "diagnosis_of",
    "scan_source",
    "setup_imports",
    "verify_notebook",
    "visible_tests",
]


@dataclass(frozen=True)
class Flag:
    """Something suspicious in a submission: ``kind`` (a short key), what, and the evidence."""

    kind: str
    detail: str
    evidence: str


@dataclass
class TestResult:
    """The verified result of one hidden test."""

    __test__ = False  # not a pytest test class

    test_id: str
    function: str
    points: float
    max_points: float
    cases: int
    message: str | None = None
    diagnosis: str | None = None

    @property
    def passed(self) -> bool:
        return self.message is None


@dataclass
class Verification:
    """The verified grade of one submission."""

    assignment: str
    student: str
    seed: int
    tests: dict[str, TestResult] = field(default_factory=dict)
    flags: list[Flag] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)
    cell_errors: dict[str, str] = field(default_factory=dict)
    output_bytes: int = 0
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(t.points for t in self.tests.values())

    @property
    def max_score(self) -> float:
        return sum(t.max_points for t in self.tests.values())

    def to_dict(self) -> dict:
        data = asdict(self)
        data["score"] = self.score
        data["max_score"] = self.max_score
        return data


# -- what each function may use ----------------------------------------------------------------

#: The C functions behind NumPy's ready-made operators: removed in the sandbox with them.
C_ENTRY_POINTS: dict[str, tuple[str, ...]] = {
    "numpy.convolve": ("numpy._core.numeric.convolve", "numpy._core.multiarray.correlate"),
    "numpy.correlate": (
        "numpy._core.numeric.correlate",
        "numpy._core.multiarray.correlate2",
        "numpy._core._multiarray_umath.correlate",
        "numpy._core._multiarray_umath.correlate2",
    ),
}

_TORCH_TYPES = CodePolicy(
    allowed_imports=("numpy", "torch", *SAFE_STDLIB),
    forbidden_names=("numpy.convolve", "numpy.correlate", "torch.nn.functional"),
    type_only=("torch",),
)


def code_policy(function: str) -> CodePolicy:
    """What the answer cell of ``function`` may import and use."""
    if function == "layer_output_shapes":
        return _TORCH_TYPES
    return CodePolicy()


def removed_names(policies: list[CodePolicy]) -> tuple[str, ...]:
    """Names deleted in the sandbox before the answers run: every forbidden name of NumPy and
    the C functions behind it."""
    names: list[str] = []
    for policy in policies:
        for name in policy.forbidden_names:
            if name.startswith("numpy."):
                names += [name, *C_ENTRY_POINTS.get(name, ())]
    return tuple(dict.fromkeys(names))


# -- the notebook ---------------------------------------------------------------------------


def _grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def answer_cells(nb: nbformat.NotebookNode, assignment: str) -> list[tuple[str, str]]:
    """``(grade_id, source)`` of the answer cells of the assignment's functions, in order."""
    functions = set(checks.ASSIGNMENTS[assignment])
    cells = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution") and _grade_id(cell) in functions:
            cells.append((_grade_id(cell), _strip_magics(cell.source)))
    return cells


def setup_imports(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """The import statements of the notebook's own set-up cells (not answers, not tests).

    Read from the released notebook (trusted), so that answer cells can rely on the names the
    exercise imported for them (``np``) and on nothing else.
    """
    lines = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("solution") or meta.get("grade"):
            continue
        try:
            tree = ast.parse(_strip_magics(cell.source))
        except SyntaxError:
            continue
        lines += [
            ast.unparse(node)
            for node in tree.body
            if isinstance(node, ast.Import | ast.ImportFrom)
            and not any(
                (getattr(node, "module", None) or alias.name).startswith("course_lib")
                for alias in node.names
            )
        ]
    return [("setup", "\n".join(lines))] if lines else []


def visible_tests(nb: nbformat.NotebookNode) -> dict[str, str]:
    """Graded test cell id -> its code before the hidden tests (the visible checks).

    Read from the released notebook (trusted): nbgrader runs these lines in the same graded
    cell as the hidden test, so they count for that cell's points.
    """
    found = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        code = _strip_magics(cell.source.split("### BEGIN HIDDEN TESTS")[0])
        lines = [
            line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")
        ]
        if lines:
            found[_grade_id(cell)] = code
    return found


def _strip_magics(source: str) -> str:
    """Comment out IPython magics and shell escapes so the cell is plain Python."""
    return "\n".join(
        "# " + line if line.lstrip().startswith(("%", "!")) else line
        for line in source.splitlines()
    )


# -- what looks like tampering --------------------------------------------------------------

_PATTERNS: list[tuple[str, str, re.Pattern[str]]] = [
    (
        "ipython-transformer",
        "changes how IPython runs cells (input/AST transformer)",
        re.compile(r"ast_transformers|input_transformers|input_transformer_manager"),
    ),
    (
        "exception-handler",
        "installs its own exception handler",
        re.compile(r"set_custom_exc|sys\.excepthook|showtraceback\s*=|_showtraceback"),
    ),
    (
        "ipython-hook",
        "registers IPython hooks or events",
        re.compile(r"events\.register|set_hook\(|register_magic|run_cell\s*="),
    ),
    (
        "patches-checker",
        "replaces a testing function or the grader's checks",
        re.compile(
            r"\b(np|numpy)\s*\.\s*(allclose|isclose|array_equal|testing(\s*\.\s*\w+)?)\s*=[^=]"
            r"|\btesting\s*\.\s*\w+\s*=[^=]|\bchecks\s*\.\s*\w+\s*=[^=]|\bguard\s*\.\s*\w+\s*=[^=]"
            r"|setattr\(\s*(np|numpy|checks|guard|testing|course_lib)|mock\.patch"
            r"|\bbuiltins\s*\.\s*\w+\s*=[^=]|__builtins__\s*\[|sys\.modules\s*\["
        ),
    ),
    (
        "ends-process",
        "ends the process or sends it signals",
        re.compile(r"os\s*\.\s*_exit|sys\s*\.\s*exit|os\s*\.\s*kill|signal\s*\.\s*signal|abort\("),
    ),
    (
        "reads-course-files",
        "reads files of the course (tests, gradebook, other submissions)",
        re.compile(r"gradebook|solutions/|\bsubmitted/|autograded/|\.ipynb|release/|source/"),
    ),
    (
        "tracing",
        "traces or profiles the interpreter",
        re.compile(r"sys\s*\.\s*set(trace|profile)|settrace|gc\s*\.\s*get_objects|_getframe"),
    ),
]


def scan_source(nb: nbformat.NotebookNode) -> list[Flag]:
    """Flags for code in any code cell that tampers with grading, with the line as evidence.

    Cells that are not answer or test cells (the student's own) are also read as code: what
    reaches the system there (``os``, ``shutil``, ``exec``, ...) is flagged.
    """
    flags = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        where = _grade_id(cell) or f"cell {index + 1}"
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not (meta.get("solution") or meta.get("grade") or meta.get("locked")):
            for finding in suspicious_code(_strip_magics(cell.source)):
                flags.append(
                    Flag(
                        finding.kind,
                        finding.what,
                        f"{where}, line {finding.line}: {finding.evidence}",
                    )
                )
        for number, line in enumerate(cell.source.splitlines(), start=1):
            code = line.split("#", 1)[0]
            for kind, detail, pattern in _PATTERNS:
                if pattern.search(code):
                    flags.append(
                        Flag(kind, detail, f"{where}, line {number}: {line.strip()[:160]}")
                    )
    return flags


# -- the grade --------------------------------------------------------------------------------


def diagnosis_of(message: str | None) -> str | None:
    """The misconception a judge's message names (a ``diagnoses.DIAGNOSES`` key), if any."""
    if not message:
        return None
    try:
        from course_lib.grading.diagnoses import DIAGNOSES
    except ImportError:
        return None
    for key, diagnosis in DIAGNOSES.items():
        if diagnosis.misconception in message:
            return key
    return None


def _contains_torch(value: object) -> bool:
    if isinstance(value, tuple | list):
        return any(_contains_torch(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_torch(v) for v in value.values())
    return type(value).__module__.startswith("torch")


def _restore(after: object, before: object) -> object:
    """Inputs that could not come back (``torch.nn`` modules) count as unmodified."""
    if isinstance(after, Unsupported):
        return before
    same_kind = type(after) is type(before) and isinstance(after, tuple | list)
    if same_kind and len(after) == len(before):
        return type(after)(_restore(a, b) for a, b in zip(after, before, strict=True))
    if isinstance(after, dict) and isinstance(before, dict):
        return {k: _restore(v, before.get(k)) for k, v in after.items()}
    return after


def _visible_failure(function: str, result) -> str | None:
    """What went wrong in the visible checks of a graded cell, or None."""
    if result.failure is not None:
        return f"{function}, the visible checks of this test: {result.failure}"
    if result.forbidden:
        return f"{function}: uses {result.forbidden[0]}, which is not allowed"
    if result.raised is not None:
        name, text = result.raised
        return f"{function} fails the visible checks of this test: {name}: {text}"[:2000]
    return None


def _judge_one(case: checks.Case, result) -> str | None:
    if result.failure is not None:
        return f"{case.function} on {case.label}: {result.failure}"
    if result.forbidden:
        return (
            f"{case.function} on {case.label}: uses {result.forbidden[0]}, which is not "
            "allowed: write the loops with NumPy"
        )
    output = checks.Raised(*result.raised) if result.raised else result.output
    try:
        message = checks.judge(case, output)
        if message is None and result.raised is None:
            args_after = _restore(result.args_after, tuple(case.args))
            kwargs_after = _restore(result.kwargs_after, dict(case.kwargs))
            message = checks.judge_inputs_unmodified(case, args_after, kwargs_after)
    except Exception as exc:  # the grader's fault, said as such in the report
        return f"{case.function} on {case.label}: grader error while judging ({exc!r})"
    return message


def verify_notebook(
    submission: str | Path | nbformat.NotebookNode,
    assignment: str,
    *,
    student: str = "",
    release: str | Path | nbformat.NotebookNode | None = None,
    seed: int | None = None,
    limits: Limits | None = None,
) -> Verification:
    """Grade ``submission`` (a path or a notebook) for ``assignment`` in the sandbox.

    ``release`` is the released exercise notebook (its set-up imports are run before the
    answers); ``seed`` fixes the cases (default: fresh entropy, recorded in the result).
    """
    started = time.perf_counter()
    nb = _read(submission)
    seed = secrets.randbits(63) if seed is None else int(seed)
    result = Verification(assignment=assignment, student=student, seed=seed)
    result.flags += scan_source(nb)
    released = _read(release) if release is not None else None
    setup = setup_imports(released) if released is not None else []
    answers = answer_cells(nb, assignment)
    cells = setup + answers
    setup_source = "\n".join(source for _, source in setup)
    findings: dict[str, list[Finding]] = {}
    for name, source in answers:
        found = check_cell(source, code_policy(name), setup=setup_source)
        if found:
            findings.setdefault(name, []).extend(found)
    visible = visible_tests(released) if released is not None else {}
    rng = np.random.default_rng(seed)
    cases: dict[str, checks.Case] = {}
    calls: list[Call] = []
    plan: list[tuple[str, str, list[str]]] = []
    for function, test_ids in checks.ASSIGNMENTS[assignment].items():
        for test_id in test_ids:
            keys = []
            if test_id in visible:
                key = f"{test_id}#visible"
                keys.append(key)
                calls.append(Call(key, function, (), {}, group=test_id, source=visible[test_id]))
            for index, case in enumerate(checks.make_cases(test_id, rng)):
                key = f"{test_id}#{index}"
                cases[key] = case
                keys.append(key)
                calls.append(Call(key, case.function, case.args, case.kwargs, group=test_id))
            plan.append((function, test_id, keys))
    packages, preload, guards = ("numpy",), [], ["forbid_ready_made"]
    if any(_contains_torch((c.args, c.kwargs)) for c in calls):
        packages, preload = ("numpy", "torch"), ["torch"]
        guards = ["forbid_ready_made", "forbid_running_modules"]
    policies = [code_policy(f) for f in checks.ASSIGNMENTS[assignment]]
    run = (
        run_functions(
            cells,
            calls,
            limits,
            packages=packages,
            preload=preload,
            guards=tuple(guards),
            remove=removed_names(policies),
        )
        if calls
        else SandboxRun()
    )

    for function, test_id, keys in plan:
        max_points = float(checks.POINTS.get(test_id, 0.0))
        message = findings[function][0].message(function) if function in findings else None
        # the hidden cases first: their messages name the misconception
        for key in sorted(keys, key=lambda k: k not in cases):
            if message is not None:
                break
            if key in cases:
                message = _judge_one(cases[key], run.results[key])
            else:
                message = _visible_failure(function, run.results[key])
            if message is not None:
                break
        cell_error = run.cell_errors.get(function)
        if message is not None and cell_error and f"name '{function}' is not defined" in message:
            message = f"{function}: its cell raised an error, so it was never defined: {cell_error}"
        result.tests[test_id] = TestResult(
            test_id=test_id,
            function=function,
            points=max_points if message is None else 0.0,
            max_points=max_points,
            cases=len(keys),
            message=message,
            diagnosis="forbidden_call" if function in findings else diagnosis_of(message),
        )
    for function, found in findings.items():
        for finding in found:
            result.flags.append(
                Flag(
                    finding.kind,
                    finding.what,
                    f"{function}, line {finding.line}: {finding.evidence}",
                )
            )
    for violation in run.violations:
        result.flags.append(Flag("protocol-violation", "broke the grader's protocol", violation))
    for attempt in run.forbidden:
        result.flags.append(
            Flag("forbidden-call", "called something the exercise forbids", attempt)
        )
    for event, detail in run.denials:
        kind = "reads-files" if event in ("open", "os.listdir", "os.scandir") else "sandbox-denied"
        result.flags.append(Flag(kind, f"the sandbox refused {event}", detail))
    result.incidents = list(run.incidents)
    result.cell_errors = {k: v for k, v in run.cell_errors.items() if v}
    result.output_bytes = run.output_bytes
    result.seconds = time.perf_counter() - started
    return result


def _read(notebook: str | Path | nbformat.NotebookNode) -> nbformat.NotebookNode:
    if isinstance(notebook, str | Path):
        return nbformat.read(str(notebook), as_version=4)
    return notebook
