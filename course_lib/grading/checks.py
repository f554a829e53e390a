"""The hidden tests as the grader and the notebooks call them (derived from the declarations).

The exercises are declared in :mod:`course_lib.grading.exercises` (one declaration per
function); this module keeps the names the grader and the notebooks have used, all derived
from there:

- :data:`ASSIGNMENTS` (assignment -> function -> hidden test ids, in notebook order) and
  :data:`POINTS` (test id -> points);
- :func:`make_cases` ``(test_id, rng)``: the visible examples of the test (for the first test
  of a function) followed by its hidden cases on fresh random inputs, so that both are judged
  by the same diagnosing judge;
- :func:`judge` ``(case, output) -> str | None`` and :func:`judge_inputs_unmodified`: the
  verdict as text, with the misconception ("Likely misconception: ... Look at: ...");
- :func:`run_test`, what a hidden test cell runs in the student's notebook:

    from course_lib.grading.checks import run_test
    run_test("test_conv2d_forward_stride", conv2d_forward)

Nothing here runs student code except :func:`run_test`, and importing this module imports only
NumPy (PyTorch and course_lib are imported when first needed).
"""

from __future__ import annotations

import contextlib
import copy
import io
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import exercises as ex
from ._case_functions import cubic_sum, neighbour_products, sin_times_square, softplus_weighted
from .exercises import Case, Raised, Verdict

__all__ = [
    "ASSIGNMENTS",
    "POINTS",
    "Case",
    "Raised",
    "TimeLimitExceeded",
    "make_cases",
    "judge",
    "judge_inputs_unmodified",
    "run_test",
    "call_student",
    "test_ids",
    "cubic_sum",
    "neighbour_products",
    "softplus_weighted",
    "sin_times_square",
]


class TimeLimitExceeded(BaseException):
    """A student call ran past its time limit.

    A BaseException, so that the student's ``except Exception`` can't hide it.
    """


#: assignment -> function -> hidden test ids, in notebook order.
ASSIGNMENTS: dict[str, dict[str, list[str]]] = {
    a.name: {f.name: f.test_ids for f in a.functions} for a in ex.ASSIGNMENTS.values()
}

#: test id -> points of its test cell (the same numbers as in the notebooks).
POINTS: dict[str, float] = {
    t.id: t.points for a in ex.ASSIGNMENTS.values() for f in a.functions for t in f.tests
}

_FUNCTION_OF: dict[str, str] = {
    test_id: function
    for functions in ASSIGNMENTS.values()
    for function, ids in functions.items()
    for test_id in ids
}


def test_ids(assignment: str | None = None) -> list[str]:
    """All hidden test ids (of one assignment), in notebook order."""
    chosen = ASSIGNMENTS if assignment is None else {assignment: ASSIGNMENTS[assignment]}
    return [t for functions in chosen.values() for ids in functions.values() for t in ids]


test_ids.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def make_cases(test_id: str, rng: np.random.Generator) -> list[Case]:
    """The visible examples of ``test_id`` (if any), then its hidden cases drawn from ``rng``."""
    return ex.visible_cases(test_id) + ex.hidden_cases(test_id, rng)


def _text(verdict: Verdict) -> str | None:
    return verdict.feedback


def judge(case: Case, output: object) -> str | None:
    """None when ``output`` is right for ``case``; else what is wrong and the likely cause.

    ``output`` is what the student's function returned, or a :class:`Raised`. The message
    starts with the function and the case, and ends with a diagnosis ("Likely misconception:
    ... Look at: ...") when the output matches a known buggy variant.
    """
    return _text(ex.judge_verdict(case, output))


def judge_inputs_unmodified(case: Case, args_after: tuple, kwargs_after: dict) -> str | None:
    """None when the arguments after the call equal the case's; else which one changed."""
    return _text(ex.inputs_verdict(case, args_after, kwargs_after))


# ---------------------------------------------------------------------------------------------
# running a hidden test in the student's kernel
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Warnings and anything written to stderr are swallowed (nbgrader zeroes stderr)."""
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stderr(io.StringIO()),
        np.errstate(all="ignore"),
    ):
        warnings.simplefilter("ignore")
        yield


def _call_with_time_limit(fn: Callable[..., Any], args: tuple, kwargs: dict, limit: float) -> Any:
    message = (
        f"did not finish within {limit:g} s: look for a loop that never ends (a while loop "
        "whose condition never changes) or for far more work than the inputs need"
    )
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):

        def on_alarm(signum: int, frame: object) -> None:
            raise TimeLimitExceeded(message)

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            return fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    # not on the main thread: run in a helper thread and stop waiting after the limit
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as error:  # handed over to the caller below
            result["error"] = error

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        raise TimeLimitExceeded(message)
    if "error" in result:
        raise result["error"]
    return result["value"]


def call_student(
    case: Case, fn: Callable[..., Any], time_limit: float = 10.0
) -> tuple[object, tuple, dict, list[str]]:
    """Call ``fn`` on copies of the case's arguments, guarded and time-limited.

    Returns ``(output or Raised, args after, kwargs after, forbidden calls attempted)``.
    """
    from . import guard as guards

    args, kwargs = copy.deepcopy((case.args, case.kwargs))
    with contextlib.ExitStack() as stack:
        attempts = [
            stack.enter_context(getattr(guards, name)()).attempts
            for name in ex.function(case.function).guards
        ]
        try:
            output: object = _call_with_time_limit(fn, args, kwargs, time_limit)
        except TimeLimitExceeded as error:
            output = Raised("TimeLimitExceeded", str(error))
        except Exception as error:
            output = Raised(type(error).__name__, str(error))
    return output, args, kwargs, [name for found in attempts for name in found]


def run_test(
    test_id: str, fn: Callable[..., Any], *, seed: int | None = None, time_limit: float = 10.0
) -> None:
    """Run the hidden test ``test_id`` on the student's function ``fn``.

    Fresh random cases (``seed=None``: new inputs at every grading run); each call gets copies of
    the inputs, runs with ready-made operators switched off and a time limit. Raises
    ``AssertionError`` with the diagnosis on the first failing case; writes nothing to stderr.
    """
    failure = None
    with _quiet():
        cases = ex.hidden_cases(test_id, np.random.default_rng(seed))
        for case in cases:
            output, args, kwargs, forbidden = call_student(case, fn, time_limit)
            if forbidden:
                verdict = ex.forbidden_verdict(case, forbidden[0])
            else:
                verdict = ex.inputs_verdict(case, args, kwargs)
                if verdict.passed and not isinstance(output, Raised):
                    aliased = ex.shared_inputs(case, args, kwargs, output)
                    verdict = ex.aliasing_verdict(case, aliased)
                if verdict.passed:
                    verdict = ex.judge_verdict(case, output)
            failure = verdict.feedback
            if failure:
                break
    if failure:
        raise AssertionError(failure)
