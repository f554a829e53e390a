"""The building blocks of the exercise declarations, and the judging they share.

An :class:`Exercise` declares one function a student writes; an :class:`Assignment` is a
notebook's list of them. Cases are drawn by the declared :class:`HiddenTest` generators, judged
by the exercise's judge against its reference, and the judgement comes back as a
:class:`Verdict`. This module imports NumPy only.
"""

from __future__ import annotations

import importlib
import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..diagnoses import GENERAL, Diagnosis, Variant, explain

__all__ = [
    "Assignment",
    "Case",
    "Chapter",
    "Exercise",
    "HiddenTest",
    "Inputs",
    "Raised",
    "Trial",
    "Verdict",
    "Visible",
    "PASS",
]

RTOL, ATOL = 1e-6, 1e-8


# ---------------------------------------------------------------------------------------------
# cases and verdicts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One call of a student function: ``function(*args, **kwargs)``.

    ``visible`` marks a case that is one of the notebook's visible examples.
    """

    test_id: str
    function: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""
    visible: bool = False


@dataclass(frozen=True)
class Raised:
    """What a student call raised, as seen by the judge."""

    type_name: str
    message: str


@dataclass(frozen=True)
class Verdict:
    """The judgement of one case.

    ``message`` says what is wrong on which case (None when it passed); ``misconception`` is a
    key of ``diagnoses.DIAGNOSES`` naming the likely mistake, or None. :attr:`feedback` is the
    text a student reads: the message and the misconception with what to look at.
    """

    passed: bool
    message: str | None = None
    misconception: str | None = None

    @property
    def feedback(self) -> str | None:
        if self.passed:
            return None
        if self.misconception is None:
            return self.message
        return f"{self.message}\n{explain(self.misconception)}"


PASS = Verdict(True)


@dataclass(frozen=True)
class Inputs:
    """The inputs of one case as a generator draws them (the test id is added later)."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class Visible:
    """A visible example of the notebook, with the answer its visible test asserts.

    ``expected`` is the value written in the notebook (a test checks that the reference gives
    it); :data:`NO_LITERAL` when the notebook checks a property instead (a shape, a sum).
    ``args`` may be a function that builds them (for ``torch.nn`` layers, made when needed).
    """

    args: tuple | Callable[[], tuple]
    kwargs: dict = field(default_factory=dict)
    label: str = ""
    expected: Any = None

    def arguments(self) -> tuple:
        return tuple(self.args() if callable(self.args) else self.args)


class _NoLiteral:
    def __repr__(self) -> str:
        return "NO_LITERAL"


NO_LITERAL: Any = _NoLiteral()


@dataclass(frozen=True)
class HiddenTest:
    """One graded test cell: its ``grade_id``, points, what it covers and its case generator.

    ``draw(rng)`` returns the cases' :class:`Inputs`, drawn fresh from ``rng``.
    """

    __test__ = False  # not a pytest test class

    id: str
    points: float
    covers: str
    draw: Callable[[np.random.Generator], list[Inputs]]


@dataclass(frozen=True)
class Trial:
    """What a judge works from: the case, its arguments by name and the reference's answer."""

    case: Case
    a: dict[str, Any]
    expected: Any


Judge = Callable[[Trial, Any], Verdict]


def _no_judge(trial: Trial, output: object) -> Verdict:  # replaced by every declaration
    raise NotImplementedError


@dataclass(frozen=True)
class Exercise:
    """Everything about one function a student writes.

    - ``name``: the function and the ``grade_id`` of its answer cell;
    - ``summary``: one line for the points table and the README;
    - ``reference``: dotted name of the function it is judged against;
    - ``tests``: its graded test cells in notebook order (the first holds the visible tests);
    - ``visible``: the visible examples of the notebook, judged like the hidden cases;
    - ``judge``: ``(Trial, output) -> Verdict``;
    - ``misconceptions``: the diagnoses its judge may name, besides :data:`GENERAL`;
    - ``pair_arguments``: parameters given as an int or a pair ``(height, width)``;
    - ``new_arrays``: the output must share no memory with the inputs;
    - the code policy, plain data for the process that runs the answer: ``allowed_imports``
      (top-level modules the answer cell may import), ``forbidden_names`` (dotted names it may
      not use; ``module.*`` means every public function of the module), ``sandbox_packages``
      (distributions that must be importable there), ``guards`` (the context managers of
      ``guard.py`` active while it runs);
    - ``judges_errors``: the judge handles the cases the contract rejects (else any ValueError
      passes them);
    - ``raised_hints``: ``(error type, text, key)``: an answer that raises that error with that
      text in its message shows that misconception.
    """

    name: str
    summary: str
    tests: tuple[HiddenTest, ...]
    judge: Judge = _no_judge
    visible: tuple[Visible, ...] = ()
    misconceptions: tuple[Diagnosis, ...] = ()
    reference: str = ""
    pair_arguments: tuple[str, ...] = ()
    new_arrays: bool = False
    allowed_imports: tuple[str, ...] = ()
    forbidden_names: tuple[str, ...] = ()
    sandbox_packages: tuple[str, ...] = ("numpy",)
    guards: tuple[str, ...] = ("forbid_ready_made",)
    judges_errors: bool = False  # the judge itself handles cases the contract rejects
    raised_hints: tuple[tuple[str, str, str], ...] = ()  # (error type, text in it, key)

    def __post_init__(self) -> None:
        if not self.reference:
            object.__setattr__(self, "reference", f"course_lib.grading.reference.{self.name}")

    # -- derived facts ------------------------------------------------------------------------

    @property
    def points(self) -> float:
        return sum(t.points for t in self.tests)

    @property
    def test_ids(self) -> list[str]:
        return [t.id for t in self.tests]

    @property
    def diagnoses(self) -> dict[str, Diagnosis]:
        """Every misconception the judge may name: the general ones and the declared ones."""
        return {d.key: d for d in (*GENERAL, *self.misconceptions)}

    def reference_function(self) -> Callable[..., Any]:
        module, _, name = self.reference.rpartition(".")
        return getattr(importlib.import_module(module), name)

    def test(self, test_id: str) -> HiddenTest:
        for t in self.tests:
            if t.id == test_id:
                return t
        raise KeyError(f"{self.name} has no test {test_id!r}; its tests: {self.test_ids}")

    # -- cases --------------------------------------------------------------------------------

    def hidden_cases(self, test_id: str, rng: np.random.Generator) -> list[Case]:
        """The cases of one hidden test, drawn from ``rng``."""
        return [
            Case(test_id, self.name, tuple(i.args), dict(i.kwargs), i.label)
            for i in self.test(test_id).draw(rng)
        ]

    def visible_cases(self, test_id: str | None = None) -> list[Case]:
        """The visible examples as cases of the first test (none for the other tests)."""
        first = self.tests[0].id
        if test_id is not None and test_id != first:
            self.test(test_id)  # an unknown id raises
            return []
        return [
            Case(first, self.name, v.arguments(), dict(v.kwargs), v.label, visible=True)
            for v in self.visible
        ]

    # -- judging ------------------------------------------------------------------------------

    def bind(self, case: Case) -> dict[str, Any]:
        """The case's arguments by parameter name, defaults filled in."""
        signature = inspect.signature(self.reference_function())
        bound = signature.bind(*case.args, **case.kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def expected(self, case: Case) -> Any:
        """The reference's answer, or ``Raised("ValueError", ...)`` when it rejects the case."""
        try:
            return self.reference_function()(*case.args, **case.kwargs)
        except ValueError as error:
            return Raised("ValueError", str(error))

    def judge_verdict(self, case: Case, output: object) -> Verdict:
        """The verdict on ``output`` (a returned value or a :class:`Raised`) for ``case``."""
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            trial = Trial(case, self.bind(case), self.expected(case))
            if isinstance(trial.expected, Raised) and not self.judges_errors:
                return expect_value_error(trial, output)
            if isinstance(output, Raised) and not isinstance(trial.expected, Raised):
                return raised(trial, output)
            return self.judge(trial, output)


@dataclass(frozen=True)
class Chapter:
    """A chapter of the book an assignment goes with."""

    number: int
    title: str
    path: str  # the chapter's source, relative to the repository root


@dataclass(frozen=True)
class Assignment:
    """One notebook: its name (the nbgrader assignment), title, chapters and functions."""

    name: str
    title: str
    chapters: tuple[Chapter, ...]
    functions: tuple[Exercise, ...]
    graded_on: str  # what the hidden tests try, for the notebook's points table

    @property
    def points(self) -> float:
        return sum(f.points for f in self.functions)

    @property
    def test_ids(self) -> list[str]:
        return [t for f in self.functions for t in f.test_ids]

    def function(self, name: str) -> Exercise:
        for f in self.functions:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no function {name!r}")

    @property
    def notebook(self) -> str:
        return f"{self.name}/{self.name}.ipynb"


# ---------------------------------------------------------------------------------------------
# saying what is wrong
# ---------------------------------------------------------------------------------------------


def fail(case: Case, what: str, key: str | None = None) -> Verdict:
    """A failed verdict: '<function>, case <label>: <what>', with a misconception key."""
    return Verdict(False, f"{case.function}, case {case.label}: {what}", key)


_PAIR_ERRORS = ("tuple", "slice indices", "sequence", "unsupported operand")


def _has_pair(trial: Trial, names: Sequence[str]) -> bool:
    return any(isinstance(trial.a.get(n), tuple | list) for n in names)


def raised(trial: Trial, output: Raised) -> Verdict:
    """The verdict on a call that raised although the reference answers."""
    case = trial.case
    if output.type_name == "NotImplementedError":
        return fail(case, "not written yet (it raises NotImplementedError)")
    if output.type_name == "ForbiddenCallError":
        return fail(case, output.message, "forbidden_call")
    if output.type_name == "TimeLimitExceeded":
        return fail(case, output.message)
    what = f"raised {output.type_name}: {output.message}"
    exercise = _exercise_of(case.function)
    pairs = exercise.pair_arguments if exercise else ()
    declared = exercise.diagnoses if exercise else {}
    for type_name, text, key in exercise.raised_hints if exercise else ():
        if output.type_name == type_name and text in output.message:
            return fail(case, what, key)
    if (
        "pair_not_handled" in declared
        and output.type_name == "TypeError"
        and _has_pair(trial, pairs)
        and any(s in output.message for s in _PAIR_ERRORS)
    ):
        return fail(case, what, "pair_not_handled")
    if (
        "square_kernel" in declared
        and output.type_name in ("ValueError", "IndexError")
        and "broadcast" in output.message
        and _non_square_kernel(trial)
    ):
        return fail(case, what, "square_kernel")
    return fail(case, what)


def _non_square_kernel(trial: Trial) -> bool:
    for name in ("w", "k", "kernel_size"):
        value = trial.a.get(name)
        if isinstance(value, np.ndarray) and value.ndim >= 2 and value.shape[-1] != value.shape[-2]:
            return True
        if isinstance(value, tuple | list) and len(value) == 2 and value[0] != value[1]:
            return True
    return False


def _exercise_of(function: str) -> Exercise | None:
    from . import FUNCTIONS

    return FUNCTIONS.get(function)


def expect_value_error(
    trial: Trial, out: object, variants: Sequence[Variant] = (), key: str = "no_value_error"
) -> Verdict:
    """The verdict where the contract asks for a ValueError (``key``: the misconception)."""
    case = trial.case
    if isinstance(out, Raised):
        if out.type_name == "ValueError":
            return PASS
        if out.type_name in ("NotImplementedError", "ForbiddenCallError", "TimeLimitExceeded"):
            return raised(trial, out)
        return fail(case, f"raised {out.type_name}: {out.message}, expected ValueError", key)
    for v in variants:
        if same_value(out, v.output):
            return fail(case, f"returned {short(out)}, expected a ValueError", v.key)
    return fail(case, f"returned {short(out)}, expected a ValueError", key)


def short(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def same_value(a: object, b: object) -> bool:
    """Equal as the judge counts it (arrays close, tuples element-wise)."""
    if isinstance(b, np.ndarray) or isinstance(a, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and np.shape(a) == np.shape(b)
            and bool(np.allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True))
        )
    if isinstance(b, tuple | list):
        return (
            isinstance(a, tuple | list)
            and len(a) == len(b)
            and all(same_value(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(b, float) and isinstance(a, int | float | np.number):
        return math.isclose(float(a), b, rel_tol=RTOL, abs_tol=ATOL)
    return bool(a == b)


def differs(output: object, expected: np.ndarray) -> bool:
    """True when a variant's output is distinguishable from the right answer."""
    return np.shape(output) != np.shape(expected) or not np.allclose(
        np.asarray(output, dtype=np.float64),
        np.asarray(expected, dtype=np.float64),
        rtol=RTOL,
        atol=ATOL,
        equal_nan=True,
    )


def first_difference(out: np.ndarray, expected: np.ndarray) -> str:
    if out.dtype.kind in "fc" or expected.dtype.kind in "fc":
        close = np.isclose(out, expected, rtol=RTOL, atol=ATOL, equal_nan=True)
    else:
        close = out == expected
    bad = np.argwhere(~close)
    if bad.size == 0:
        return "the values differ"
    index = tuple(int(i) for i in bad[0])
    return (
        f"{len(bad)} of {expected.size} values differ from the expected ones; e.g. at index "
        f"{index}: got {out[index]:.6g}, expected {expected[index]:.6g}"
    )


Variants = Sequence[Variant] | Callable[[], Sequence[Variant]]


def _listed(variants: Variants) -> list[Variant]:
    return list(variants() if callable(variants) else variants)


def judge_array(
    case: Case, name: str, out: object, expected: np.ndarray, variants: Variants = ()
) -> Verdict:
    """Shape, dtype and values of an array output; a wrong one matched against ``variants``.

    ``variants`` (or a function returning them, called only when the output is wrong) are
    the outputs of buggy versions: value variants match by shape and values, shape-only ones
    by shape.
    """
    if isinstance(out, Raised):
        return fail(case, f"{name}: raised {out.type_name}: {out.message}")
    if not isinstance(out, np.ndarray):
        what = f"{name} is a {type(out).__name__}, expected a numpy.ndarray of shape {expected.shape}"
        for v in _listed(variants):
            if not v.shape_only and not isinstance(v.output, np.ndarray) and same_value(out, v.output):
                return fail(case, what, v.key)
        return fail(case, what, "not_an_array")
    if out.shape != expected.shape:
        what = f"{name} has shape {out.shape}, expected {expected.shape}"
        listed = _listed(variants)
        for v in listed:
            if not v.shape_only and np.shape(v.output) == out.shape and same_value(out, v.output):
                return fail(case, what, v.key)
        for v in listed:
            shape = v.output if v.shape_only else np.shape(v.output)
            if tuple(shape) == out.shape:  # type: ignore[arg-type]
                return fail(case, what, v.key)
        return fail(case, what, "wrong_shape")
    if out.dtype != expected.dtype:
        exact = expected.dtype.kind in "biu"
        if not exact or not np.array_equal(out, expected):
            # wrong dtype and wrong values: the values say more
            if out.dtype.kind in "fc" or exact:
                values = _judge_values(case, name, out, expected, variants)
                if not values.passed and values.misconception is not None:
                    return values
        key = "empty_float_array" if out.size == 0 and exact else "wrong_dtype"
        return fail(case, f"{name} has dtype {out.dtype}, expected {expected.dtype}", key)
    return _judge_values(case, name, out, expected, variants)


def _judge_values(
    case: Case, name: str, out: np.ndarray, expected: np.ndarray, variants: Variants
) -> Verdict:
    if expected.dtype.kind in "fc":
        ok = bool(np.allclose(out, expected, rtol=RTOL, atol=ATOL, equal_nan=True))
    else:
        ok = bool(np.array_equal(out, expected))
    if ok:
        return PASS
    what = f"{name} is wrong: {first_difference(out, expected)}"
    for v in _listed(variants):
        if v.shape_only or np.shape(v.output) != out.shape:
            continue
        if np.allclose(
            np.asarray(out, dtype=np.float64),
            np.asarray(v.output, dtype=np.float64),
            rtol=RTOL,
            atol=ATOL,
            equal_nan=True,
        ):
            return fail(case, what, v.key)
    return fail(case, what)


def is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def judge_int(case: Case, out: object, expected: int, variants: Variants = ()) -> Verdict:
    """An int output; a wrong one matched against ``variants`` (ints)."""
    if isinstance(out, float | np.floating):
        return fail(case, f"returned the float {out!r}, expected the int {expected}", "true_division")
    if not is_int(out):
        return fail(case, f"returned a {type(out).__name__}, expected an int", "not_an_int")
    if out == expected:
        return PASS
    for v in _listed(variants):
        if v.output == out and v.output != expected:
            return fail(case, f"returned {out}, expected {expected}", v.key)
    return fail(case, f"returned {out}, expected {expected}")


def judge_float(case: Case, out: object, expected: float, variants: Variants = ()) -> Verdict:
    """A float output; a wrong one matched against ``variants``."""
    if isinstance(out, np.ndarray) and out.shape == ():
        out = out[()]
    if not isinstance(out, float | int | np.floating | np.integer) or isinstance(out, bool):
        return fail(case, f"returned a {type(out).__name__}, expected a float", "not_a_float")
    value = float(out)
    if math.isclose(value, expected, rel_tol=RTOL, abs_tol=ATOL):
        return PASS
    what = f"returned {value:.6g}, expected {expected:.6g}"
    for v in _listed(variants):
        if isinstance(v.output, float | int) and not math.isclose(
            float(v.output), expected, rel_tol=RTOL, abs_tol=ATOL
        ):
            if math.isclose(value, float(v.output), rel_tol=RTOL, abs_tol=ATOL):
                return fail(case, what, v.key)
    return fail(case, what)


@dataclass(frozen=True)
class Part:
    """One entry of a tuple output: its name and the variants of buggy versions."""

    name: str
    variants: Callable[[Trial], Sequence[Variant]] = lambda trial: ()


def judge_parts(trial: Trial, out: object, parts: Sequence[Part]) -> Verdict:
    """A tuple output ``(a, b, ...)`` of arrays, judged entry by entry in order."""
    case, expected = trial.case, trial.expected
    names = ", ".join(p.name for p in parts)
    if not isinstance(out, tuple | list) or len(out) != len(parts):
        kind = f"a {type(out).__name__}" if not isinstance(out, tuple | list) else f"{len(out)} values"
        return fail(case, f"returned {kind}, expected the tuple ({names})", "not_a_tuple")
    for index, part in enumerate(parts):
        verdict = judge_array(
            case, part.name, out[index], expected[index], lambda p=part: p.variants(trial)
        )
        if not verdict.passed:
            return verdict
    return PASS


def keep_different(variants: Sequence[Variant], expected: object) -> list[Variant]:
    """The variants whose output differs from the right answer (the others say nothing)."""
    kept = []
    for v in variants:
        if v.shape_only:
            if tuple(v.output) != np.shape(expected):  # type: ignore[arg-type]
                kept.append(v)
        elif isinstance(expected, np.ndarray):
            if differs(v.output, expected):
                kept.append(v)
        elif not same_value(v.output, expected):
            kept.append(v)
    return kept


def pair(value: int | Sequence[int]) -> tuple[int, int]:
    """``3 -> (3, 3)``, ``(2, 1) -> (2, 1)``."""
    if isinstance(value, int | np.integer):
        return (int(value), int(value))
    return (int(value[0]), int(value[1]))


def settings(**values: object) -> dict[str, object]:
    """Keyword arguments without the ones left at their default (``None`` = leave out)."""
    return {k: v for k, v in values.items() if v is not None}


def dims(x: np.ndarray) -> str:
    """'N=2 C=3 H=5 W=7' for an NCHW array (or the trailing names of a smaller one)."""
    names = "NCHW"[-x.ndim :] if x.ndim <= 4 else ""
    return " ".join(f"{a}={s}" for a, s in zip(names, x.shape, strict=True)) or str(x.shape)


def normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


def ties(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Integer-valued floats in {0, 1, 2}: many repeated maxima in every window."""
    return rng.integers(0, 3, size=shape).astype(np.float64)


def ref(name: str) -> Callable[..., Any]:
    """A reference function by name (imported when first needed: it imports PyTorch)."""
    from .. import reference

    return getattr(reference, name)
