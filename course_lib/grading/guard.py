"""Switch off ready-made convolution and pooling while a student's code runs.

The exercises ask for loops written with NumPy. While :func:`forbid_ready_made` is active, the
ready-made operators that the exercise declarations forbid (``scipy.signal.correlate2d`` and
friends, ``scipy.ndimage`` filters, ``numpy.convolve``, PyTorch's convolution, pooling,
``unfold`` and batch norm, ``torchvision.ops``, and course_lib's own operators; see
``course_lib/grading/exercises/_policy.py``) raise :class:`ForbiddenCallError`, and every
attempt is recorded, even one the student's code catches or one made through a name bound
before the guard was switched on.
:func:`forbid_running_modules` does the same for running ``torch.nn`` modules (the output-shape
exercise asks for shapes worked out from the layers' settings).

>>> import numpy as np
>>> with forbid_ready_made() as guard:
...     try:
...         np.convolve([1.0, 2.0], [1.0, 1.0])
...     except ForbiddenCallError as error:
...         print(error)
uses numpy.convolve, which is not allowed: write the loops with NumPy
>>> guard.attempts
['numpy.convolve']
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from types import FunctionType, ModuleType
from typing import Any

__all__ = [
    "ForbiddenCallError",
    "Guard",
    "forbid_ready_made",
    "forbid_running_modules",
    "forbidden_message",
    "attempts",
    "READY_MADE",
]


class ForbiddenCallError(Exception):
    """Raised when student code calls a ready-made operator the exercise asks to write."""


def _ready_made() -> dict[str, tuple[str, ...]]:
    """Module -> the names forbidden there, derived from the exercise declarations.

    Where the declarations cannot be imported (a process that holds only this file and
    ``exercises/_policy.py``), the union of the policy's lists of names is used instead.
    """
    try:
        from course_lib.grading.exercises import ready_made_by_module

        return ready_made_by_module()
    except ImportError:
        import importlib.util
        from pathlib import Path

        path = Path(__file__).with_name("exercises") / "_policy.py"
        spec = importlib.util.spec_from_file_location("course_policy", path)
        assert spec is not None and spec.loader is not None
        policy = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(policy)
        found: dict[str, list[str]] = {}
        for value in vars(policy).values():
            if isinstance(value, tuple) and all(isinstance(v, str) and "." in v for v in value):
                for dotted in value:
                    module, _, name = dotted.rpartition(".")
                    names = found.setdefault(module, [])
                    if name not in names:
                        names.append(name)
        return {module: tuple(names) for module, names in found.items()}


#: Module -> names of the ready-made operators switched off there; ``*`` stands for every
#: public function the module (or one of its submodules) defines.
READY_MADE: dict[str, tuple[str, ...]] = _ready_made()

#: Tensor methods switched off: ``x.unfold(...)`` slides a window like a ready-made pool.
_TENSOR_METHODS = ("unfold",)

#: What the last (or current) guard recorded; the same list as ``Guard.attempts``.
attempts: list[str] = []


def _message(name: str) -> str:
    return f"uses {name}, which is not allowed: write the loops with NumPy"


_MODULE_MESSAGE = (
    "runs a torch.nn module ({}), which is not allowed here: work the shape out from "
    "the layer's settings (kernel_size, stride, padding, dilation, ...)"
)


def forbidden_message(name: str) -> str:
    """The feedback for a recorded attempt ``name`` (an entry of ``Guard.attempts``)."""
    if name.endswith((".forward", ".__call__")):
        return _MODULE_MESSAGE.format(name)
    return _message(name)


class Guard:
    """An active guard: ``attempts`` lists the forbidden calls seen, in order."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._patches: list[tuple[Any, str, Any]] = []
        self._code_names: dict[Any, str] = {}
        self._builtin_names: dict[int, str] = {}
        self._builtins_alive: list[Any] = []
        self._previous_profile: Callable[..., Any] | None = None  # an outer guard's, chained

    # -- recording ----------------------------------------------------------------------------

    def record(self, name: str) -> None:
        if not self.attempts or self.attempts[-1] != name:
            self.attempts.append(name)

    def _profile(self, frame: Any, event: str, arg: Any) -> None:
        # Catches calls through names bound before the guard was switched on
        # (``from scipy.signal import correlate2d`` at the top of a cell): record only.
        if self._previous_profile is not None:
            self._previous_profile(frame, event, arg)
        if event == "call":
            name = self._code_names.get(frame.f_code)
            if name is not None:
                self.record(name)
        elif event == "c_call":
            name = self._builtin_names.get(id(arg))
            if name is None and getattr(arg, "__name__", None) in _TENSOR_METHODS:
                owner = getattr(arg, "__self__", None)
                if type(owner).__module__.startswith("torch"):
                    name = f"torch.Tensor.{arg.__name__}"
            if name is not None:
                self.record(name)

    # -- patching -----------------------------------------------------------------------------

    def _patch(self, owner: Any, attribute: str, name: str, message: str) -> None:
        own = attribute in vars(owner)
        original = vars(owner)[attribute] if own else getattr(owner, attribute)
        guard = self

        @functools.wraps(original if callable(original) else _placeholder)
        def forbidden(*args: Any, **kwargs: Any) -> Any:
            guard.record(name)
            raise ForbiddenCallError(message)

        self._patches.append((owner, attribute, original if own else _INHERITED))
        setattr(owner, attribute, forbidden)
        target = getattr(original, "__func__", original)
        if isinstance(target, FunctionType):
            self._code_names[target.__code__] = name
        elif callable(target):
            self._builtin_names[id(target)] = name
            self._builtins_alive.append(target)

    def patch_ready_made(self) -> None:
        # Only what is imported already is patched now (importing SciPy or PyTorch takes
        # seconds); a module of READY_MADE imported while the guard is on is patched then.
        self._patched_modules: set[str] = set()
        for module_name in READY_MADE:
            module = sys.modules.get(module_name)
            if module is not None and not _initializing(module):
                self._patch_module(module_name, module)
        self._watch_imports()

    def _patch_module(self, module_name: str, module: ModuleType) -> None:
        self._patched_modules.add(module_name)
        if module_name == "torch":
            for method in _TENSOR_METHODS:
                label = f"torch.Tensor.{method}"
                self._patch(module.Tensor, method, label, _message(label))
        for attribute in _names(module_name, module):
            original = getattr(module, attribute, None)
            if original is None or not callable(original):
                continue
            label = f"{module_name}.{attribute}"
            self._patch(module, attribute, label, _message(label))
            # also where the function is defined (scipy.signal._signaltools, ...)
            home = sys.modules.get(getattr(original, "__module__", None) or "")
            if (
                home is not None
                and home is not module
                and getattr(home, attribute, None) is original
            ):
                self._patch(home, attribute, label, _message(label))

    def _watch_imports(self) -> None:
        """Patch the modules of READY_MADE that student code imports while the guard is on."""
        original_import = builtins.__import__
        guard = self

        def guarded_import(name: str, *args: Any, **kwargs: Any) -> Any:
            profile = sys.getprofile()
            if profile is None:
                # A thread without the guard's profile (the kernel's own threads import
                # lazily too): nothing to suspend, and no sys.setprofile from this thread,
                # which would race with the guarded thread's (CPython refuses a profile
                # function while another is being installed, and the kernel prints that
                # error on stderr, into the student's cell).
                module = original_import(name, *args, **kwargs)
            else:
                sys.setprofile(None)  # importing a library is not the student's call: full speed
                try:
                    module = original_import(name, *args, **kwargs)
                finally:
                    sys.setprofile(profile)
            for module_name in READY_MADE:
                found = sys.modules.get(module_name)
                if (
                    found is not None
                    and module_name not in guard._patched_modules
                    and not _initializing(found)
                ):
                    guard._patch_module(module_name, found)
            return module

        self._patches.append((builtins, "__import__", original_import))
        builtins.__import__ = guarded_import

    def patch_modules(self) -> None:
        from torch import nn

        label = "torch.nn.Module.__call__"
        self._patch(nn.Module, "__call__", label, forbidden_message(label))
        seen: set[type] = set()
        for value in vars(nn).values():
            if isinstance(value, type) and issubclass(value, nn.Module):
                for cls in value.__mro__:
                    if cls in seen or "forward" not in cls.__dict__:
                        continue
                    seen.add(cls)
                    label = f"{cls.__name__}.forward"
                    self._patch(cls, "forward", label, forbidden_message(label))

    def restore(self) -> None:
        for owner, attribute, original in reversed(self._patches):
            if original is _INHERITED:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)
        self._patches.clear()


_INHERITED = object()


def _placeholder(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - only its metadata
    """A forbidden operator."""


def _names(module_name: str, module: ModuleType) -> list[str]:
    names = [n for n in READY_MADE[module_name] if n != "*"]
    if "*" in READY_MADE[module_name]:
        for name, value in vars(module).items():
            home = getattr(value, "__module__", None) or ""
            if (
                isinstance(value, FunctionType)
                and not name.startswith("_")
                and (home == module_name or home.startswith(module_name + "."))
                and name not in names
            ):
                names.append(name)
    return names


def _initializing(module: ModuleType) -> bool:
    """True while a module is still being imported (its attributes are not all there yet)."""
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


@contextlib.contextmanager
def _active(setup: Callable[[Guard], None]) -> Iterator[Guard]:
    global attempts
    guard = Guard()
    attempts = guard.attempts
    previous_profile = sys.getprofile()
    guard._previous_profile = previous_profile
    try:
        setup(guard)
        sys.setprofile(guard._profile)
        yield guard
    finally:
        sys.setprofile(previous_profile)
        guard.restore()


def forbid_ready_made() -> contextlib.AbstractContextManager[Guard]:
    """While active, ready-made convolution/pooling raise :class:`ForbiddenCallError`.

    Yields the :class:`Guard`; ``guard.attempts`` lists the forbidden calls made.
    """
    return _active(Guard.patch_ready_made)


def forbid_running_modules() -> contextlib.AbstractContextManager[Guard]:
    """While active, calling a ``torch.nn`` module or its ``forward`` raises ForbiddenCallError."""
    return _active(Guard.patch_modules)
