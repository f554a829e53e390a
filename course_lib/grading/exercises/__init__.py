"""The autograded exercises, declared once: one module per assignment, one declaration per function.

Each function a student writes is an :class:`Exercise` (see ``_base.py``): its hidden tests
(grade ids, points, what they cover, a generator of cases on fresh random inputs), its visible
examples (the notebook's visible tests, as cases with the answers they assert), its judge and
the misconceptions the judge names, its reference, and its code policy as plain data. An
:class:`Assignment` lists the functions of one notebook. Everything else derives from here: the
compatibility names of :mod:`course_lib.grading.checks`, the guard's lists of forbidden names,
``diagnoses.DIAGNOSES``, the checks of the notebooks and of the README's tables.

The API (importing it imports NumPy only; judging imports PyTorch for the references):

- :data:`ASSIGNMENTS`: name -> :class:`Assignment` (``.functions``, ``.test_ids``, ``.points``);
  :func:`assignment`, :func:`function` (by name), :func:`exercise_of` (by test id);
- :func:`hidden_cases` ``(test_id, rng) -> list[Case]``: one hidden test's cases;
- :func:`visible_cases` ``(test_id) -> list[Case]``: the visible examples, as cases of the
  first test of their function (``Case.visible`` is True); judge them like hidden cases;
- :func:`judge_verdict` ``(case, output) -> Verdict``: ``output`` is the returned value or a
  :class:`Raised`; ``Verdict(passed, message, misconception)``, ``.feedback`` the text to show;
- :func:`inputs_verdict` ``(case, args_after, kwargs_after) -> Verdict``: were the inputs left
  as they were; :func:`aliasing_verdict` ``(case, aliased) -> Verdict``: for an exercise with
  ``new_arrays``, the names of the inputs the output shares memory with (the process that runs
  the call finds them, with ``numpy.shares_memory``, before the output leaves it);
- :func:`forbidden_verdict` ``(case, name) -> Verdict``: a forbidden call was recorded;
- per exercise, the code policy: ``allowed_imports``, ``forbidden_names``,
  ``sandbox_packages``, ``guards``; :func:`policy` merges them for one assignment.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..diagnoses import Diagnosis
from . import architectures, backprop, convolution, detection, output_shapes
from ._base import (
    NO_LITERAL,
    PASS,
    Assignment,
    Case,
    Exercise,
    HiddenTest,
    Raised,
    Verdict,
    Visible,
    fail,
)

__all__ = [
    "ASSIGNMENTS",
    "FUNCTIONS",
    "NO_LITERAL",
    "Assignment",
    "Case",
    "Exercise",
    "HiddenTest",
    "Raised",
    "Verdict",
    "Visible",
    "aliasing_verdict",
    "assignment",
    "exercise_of",
    "forbidden_message",
    "forbidden_verdict",
    "shared_inputs",
    "function",
    "hidden_cases",
    "inputs_verdict",
    "judge_verdict",
    "policy",
    "ready_made_by_module",
    "visible_cases",
]

#: assignment name -> its declaration, in the order of the course.
ASSIGNMENTS: dict[str, Assignment] = {
    m.ASSIGNMENT.name: m.ASSIGNMENT
    for m in (convolution, output_shapes, backprop, architectures, detection)
}

#: function name -> its declaration.
FUNCTIONS: dict[str, Exercise] = {f.name: f for a in ASSIGNMENTS.values() for f in a.functions}

_BY_TEST: dict[str, Exercise] = {t.id: f for f in FUNCTIONS.values() for t in f.tests}


def assignment(name: str) -> Assignment:
    """The declaration of an assignment."""
    try:
        return ASSIGNMENTS[name]
    except KeyError:
        raise KeyError(f"unknown assignment {name!r}; known: {', '.join(ASSIGNMENTS)}") from None


def function(name: str) -> Exercise:
    """The declaration of an exercise function."""
    try:
        return FUNCTIONS[name]
    except KeyError:
        raise KeyError(f"unknown exercise function {name!r}; known: {', '.join(FUNCTIONS)}") from None


def exercise_of(test_id: str) -> Exercise:
    """The function a hidden test id tests."""
    try:
        return _BY_TEST[test_id]
    except KeyError:
        known = ", ".join(sorted(_BY_TEST))
        raise KeyError(f"unknown test id {test_id!r}; known: {known}") from None


def hidden_cases(test_id: str, rng: np.random.Generator) -> list[Case]:
    """The cases of one hidden test, with inputs drawn from ``rng``."""
    return exercise_of(test_id).hidden_cases(test_id, rng)


def visible_cases(test_id: str) -> list[Case]:
    """The notebook's visible examples for ``test_id`` (only the first test of a function)."""
    return exercise_of(test_id).visible_cases(test_id)


def judge_verdict(case: Case, output: object) -> Verdict:
    """The verdict on ``output`` (a value or a :class:`Raised`) for ``case``."""
    return function(case.function).judge_verdict(case, output)


# ---------------------------------------------------------------------------------------------
# inputs left as they were, new arrays, forbidden calls
# ---------------------------------------------------------------------------------------------


def _same(before: object, after: object) -> bool:
    if isinstance(before, np.ndarray):
        return (
            isinstance(after, np.ndarray)
            and before.shape == after.shape
            and before.dtype == after.dtype
            and np.array_equal(before, after, equal_nan=True)
        )
    if isinstance(before, tuple | list):
        return (
            type(before) is type(after)
            and len(before) == len(after)  # type: ignore[arg-type]
            and all(_same(x, y) for x, y in zip(before, after, strict=True))  # type: ignore[call-overload]
        )
    if type(before).__module__.startswith("torch"):
        return _same_module(before, after)
    return before is after or bool(before == after)


def _same_module(before: Any, after: Any) -> bool:
    if type(before) is not type(after) or repr(before) != repr(after):
        return False
    state_before, state_after = before.state_dict(), after.state_dict()
    return state_before.keys() == state_after.keys() and all(
        bool((state_before[k] == state_after[k]).all()) for k in state_before
    )


def inputs_verdict(case: Case, args_after: tuple, kwargs_after: dict) -> Verdict:
    """Passed when the arguments after the call equal the case's; else which one changed."""
    names = list(function(case.function).bind(case))
    for i, (before, after) in enumerate(zip(case.args, args_after, strict=True)):
        if not _same(before, after):
            return fail(case, f"the argument {names[i]} was modified", "input_modified")
    for name, before in case.kwargs.items():
        if not _same(before, kwargs_after.get(name)):
            return fail(case, f"the argument {name} was modified", "input_modified")
    return PASS


def aliasing_verdict(case: Case, aliased: list[str]) -> Verdict:
    """Passed unless the exercise asks for new arrays and the output shares memory with an input.

    ``aliased``: the names of the arguments the output (or an entry of it) shares memory with.
    """
    if not aliased or not function(case.function).new_arrays:
        return PASS
    return fail(
        case,
        f"the returned array shares its memory with the argument {aliased[0]}",
        "output_aliases_input",
    )


def shared_inputs(case: Case, args: tuple, kwargs: dict, output: object) -> list[str]:
    """The names of the arguments (as passed to the call) that ``output`` shares memory with."""
    exercise = function(case.function)
    names = list(exercise.bind(Case(case.test_id, case.function, args, kwargs)))
    arrays = [a for a in _arrays(output)]
    found = []
    for name, value in [*zip(names, args, strict=False), *kwargs.items()]:
        for array in _arrays(value):
            if any(np.shares_memory(out, array) for out in arrays):
                found.append(name)
                break
    return found


def _arrays(value: object) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, tuple | list):
        return [a for item in value for a in _arrays(item)]
    return []


def forbidden_message(name: str) -> str:
    """The feedback for a recorded forbidden call ``name``."""
    if name.endswith((".forward", ".__call__")):
        return (
            f"runs a torch.nn module ({name}), which is not allowed here: work the shape out "
            "from the layer's settings (kernel_size, stride, padding, dilation, ...)"
        )
    return f"uses {name}, which is not allowed: write the loops with NumPy"


def forbidden_verdict(case: Case, name: str) -> Verdict:
    """The verdict on a case during which the forbidden ``name`` was called."""
    return fail(case, forbidden_message(name), "forbidden_call")


# ---------------------------------------------------------------------------------------------
# the code policy, merged
# ---------------------------------------------------------------------------------------------


def policy(name: str) -> dict[str, tuple[str, ...]]:
    """The code policy of one assignment: the union over its functions, in declaration order."""
    merged: dict[str, tuple[str, ...]] = {}
    for key in ("allowed_imports", "forbidden_names", "sandbox_packages", "guards"):
        values: list[str] = []
        for f in assignment(name).functions:
            values += [v for v in getattr(f, key) if v not in values]
        merged[key] = tuple(values)
    return merged


def ready_made_by_module() -> dict[str, tuple[str, ...]]:
    """Module -> the names forbidden there, over every exercise (what ``guard.py`` patches)."""
    found: dict[str, list[str]] = {}
    for f in FUNCTIONS.values():
        for dotted in f.forbidden_names:
            module, _, name = dotted.rpartition(".")
            names = found.setdefault(module, [])
            if name not in names:
                names.append(name)
    return {module: tuple(names) for module, names in found.items()}


def all_misconceptions() -> dict[str, Diagnosis]:
    """Every misconception key any exercise may name."""
    found: dict[str, Diagnosis] = {}
    for f in FUNCTIONS.values():
        found.update(f.diagnoses)
    return found
