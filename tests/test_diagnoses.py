"""Each known misconception, written as buggy code, is named by the judge; right code passes.

Every buggy function of ``grading_fixtures.buggy`` has exactly one typical mistake. It is run
on the cases of a test (the visible examples first, then the hidden cases) the way the grader
judges them: inputs left as they were, no output sharing memory with an input where the
contract asks for new arrays, then the output. The first failing case's verdict must name the
misconception, and the feedback must say what to look at.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from grading_fixtures.buggy import BUGS, MORE, S

from course_lib.grading import checks
from course_lib.grading import exercises as ex
from course_lib.grading.diagnoses import DIAGNOSES
from course_lib.grading.exercises import PASS, Raised, Verdict


def first_failure(test_id: str, fn, seed: int = 0) -> Verdict:
    """The verdict on the first failing case of ``test_id`` (visible ones first), else PASS."""
    for case in checks.make_cases(test_id, np.random.default_rng(seed)):
        args, kwargs = copy.deepcopy((case.args, case.kwargs))
        try:
            with np.errstate(all="ignore"):
                output = fn(*args, **kwargs)
        except Exception as error:
            output = Raised(type(error).__name__, str(error))
        verdict = ex.inputs_verdict(case, args, kwargs)
        if verdict.passed and not isinstance(output, Raised):
            verdict = ex.aliasing_verdict(case, ex.shared_inputs(case, args, kwargs, output))
        if verdict.passed:
            verdict = ex.judge_verdict(case, output)
        if not verdict.passed:
            return verdict
    return PASS


def first_failure_of_function(function: str, fn, seed: int = 0) -> Verdict:
    for test_id in ex.function(function).test_ids:
        verdict = first_failure(test_id, fn, seed)
        if not verdict.passed:
            return verdict
    return PASS


@pytest.mark.parametrize(("key", "test_id", "buggy"), BUGS, ids=[f"{k}-{t}" for k, t, _ in BUGS])
def test_each_misconception_is_named(key: str, test_id: str, buggy) -> None:
    for seed in (0, 1):
        verdict = first_failure(test_id, buggy, seed)
        assert not verdict.passed, f"{buggy.__name__} passed {test_id}"
        assert verdict.misconception == key, verdict.feedback
        assert key in ex.exercise_of(test_id).diagnoses, f"{key} is not declared for {test_id}"
        assert DIAGNOSES[key].misconception in verdict.feedback
        assert DIAGNOSES[key].look_at in verdict.feedback
        # the verdict is data: the message itself never carries the explanation
        assert "Likely misconception" not in verdict.message


def test_every_diagnosis_but_the_guard_has_a_buggy_example() -> None:
    covered = {key for key, _, _ in BUGS}
    assert set(DIAGNOSES) - covered == {"forbidden_call"}  # covered in test_checks


@pytest.mark.parametrize("assignment", ["architectures", "detection"])
def test_each_new_function_has_four_misconceptions_with_buggy_examples(assignment: str) -> None:
    for f in ex.assignment(assignment).functions:
        examples = {key for key, test_id, _ in BUGS if ex.exercise_of(test_id).name == f.name}
        own = {d.key for d in f.misconceptions} & examples
        assert len(own) >= 3 + (f.name != "batched_nms"), (f.name, sorted(own))


def test_at_least_95_percent_of_typical_mistakes_are_named() -> None:
    catalogue = [(ex.exercise_of(t).name, fn) for _, t, fn in BUGS] + MORE
    named, unnamed = 0, []
    for function, fn in catalogue:
        verdict = first_failure_of_function(function, fn)
        assert not verdict.passed, f"{getattr(fn, '__name__', fn)} passes every test of {function}"
        if verdict.misconception is not None:
            named += 1
        else:
            unnamed.append(verdict.message)
    share = named / len(catalogue)
    print(f"{named} of {len(catalogue)} typical mistakes named ({share:.1%})")
    assert share >= 0.95, "\n".join(unnamed)


def test_visible_failures_name_the_mistake_too() -> None:
    # a flipped kernel fails the visible example already, and the verdict there names it
    case = ex.visible_cases("test_corr2d")[0]
    x, k = case.args
    verdict = ex.judge_verdict(case, S["corr2d"](x, k[::-1, ::-1]))
    assert case.visible and verdict.misconception == "kernel_flipped"
    assert verdict.message.startswith("corr2d, case visible example: ")


@pytest.mark.parametrize("test_id", checks.test_ids())
def test_the_solutions_pass_every_case_for_many_seeds(test_id: str) -> None:
    fn = S[ex.exercise_of(test_id).name]
    for seed in range(6):
        assert first_failure(test_id, fn, seed).passed


def test_no_misconception_text_appears_in_another_s_feedback() -> None:
    # the grader of today finds the key by the misconception's text in the message
    from course_lib.grading.diagnoses import explain

    for key, d in DIAGNOSES.items():
        others = [k for k in DIAGNOSES if k != key and d.misconception in explain(k)]
        assert not others, (key, others)
