"""Run a student's functions in an isolated, limited process and get back only their answers.

The grader never runs a student's code in its own process. :func:`run_functions` starts the child
(``_sandbox_child.py``) in a bubblewrap container (:mod:`isolation`: a view of only the
interpreter and the allowed packages, no course files, no other processes, no network, an
unprivileged user), sends it the job on its standard input, and then drives it: it asks for one
call at a time (``RunCall``) and waits for that call's answer (``CallDone``), each with a wall
clock that no message of the child's can move, inside a total budget for the whole submission.

What comes back is plain data in the typed messages of :mod:`wire`, read in frames of capped size
and decoded within a node budget. A child that loops, eats the memory, floods its output, kills
itself or breaks the protocol (a message out of turn, a frame too large, a malformed value) is
killed and reported with the reason; the calls it did not answer run in a new process.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
import subprocess
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.grading import isolation, wire
from course_lib.grading.wire import Unsupported

__all__ = [
    "BLOCKED",
    "Call",
    "CallResult",
    "Limits",
    "SandboxRun",
    "Unsupported",
    "run_functions",
]

#: Libraries a student's code may not import (when they are in the view at all).
BLOCKED = ("torch", "torchvision", "scipy", "course_lib", "tensorflow", "jax", "cv2", "skimage")

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Limits:
    """What one submission's sandboxed processes may use.

    ``call_timeout`` is the wall-clock limit of one call, ``cells_timeout`` of running the cells,
    ``total_seconds`` of the whole submission (all its processes together: when it is used up,
    the calls not yet run fail), ``memory_mb`` the address-space limit (on top of what the
    interpreter and the preloaded modules map), ``output_chars`` how much printed text is kept,
    ``flood_bytes`` how much raw output ends the process, ``frame_bytes`` the largest message the
    grader reads, ``message_bytes`` all the messages of one process together, ``nproc`` the
    process limit (applied when the child runs as the dedicated user ``nobody``).
    """

    call_timeout: float = 10.0
    cells_timeout: float = 20.0
    total_seconds: float = 300.0
    start_timeout: float = 60.0
    memory_mb: int = 2048
    cpu_seconds: int = 120
    file_bytes: int = 16 * 1024 * 1024
    output_chars: int = 4000
    flood_bytes: int = 8 * 1024 * 1024
    frame_bytes: int = 16 * 1024 * 1024
    message_bytes: int = 256 * 1024 * 1024
    nproc: int | None = 0


@dataclass(frozen=True)
class Call:
    """One call ``function(*args, **kwargs)``; ``group`` is skipped after its first crash.

    With ``source``, the call runs that code in the cells' namespace instead (the exercise's
    visible checks of a graded cell); its output is None or what it raised.
    """

    key: str
    function: str
    args: tuple
    kwargs: dict
    group: str = ""
    source: str | None = None


@dataclass
class CallResult:
    """What came back for one call: ``output`` (a value), ``raised`` (type name, message) or
    ``failure`` (why there is no answer: timeout, memory, crash, protocol, skipped)."""

    key: str
    output: object = None
    raised: tuple[str, str] | None = None
    args_after: tuple | None = None
    kwargs_after: dict | None = None
    seconds: float = 0.0
    failure: str | None = None
    forbidden: list[str] = field(default_factory=list)


@dataclass
class SandboxRun:
    """Everything one submission's run produced."""

    results: dict[str, CallResult] = field(default_factory=dict)
    cell_errors: dict[str, str | None] = field(default_factory=dict)
    denials: list[tuple[str, str]] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)
    output: str = ""
    output_bytes: int = 0
    processes: int = 0
    incidents: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    user: str = ""


class _Stop(Exception):
    """The child's process ends here; ``reason`` says why (None: it finished properly)."""

    def __init__(self, reason: str | None, *, violation: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.violation = violation


def _helper_modules(calls: list[Call]) -> dict[str, Path]:
    """Modules of the grader whose functions are arguments (they are shipped to the child)."""
    found: dict[str, Path] = {}

    def visit(value: object) -> None:
        if isinstance(value, tuple | list):
            for item in value:
                visit(item)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, types.FunctionType):
            module = value.__module__
            if module.startswith("course_lib."):
                import importlib

                found[module] = Path(importlib.import_module(module).__file__ or "")

    for call in calls:
        visit((call.args, call.kwargs))
    return found


class _Child:
    """One container running the child; reads its frames and output, enforces the clocks."""

    def __init__(self, command: list[str], limits: Limits, run: SandboxRun) -> None:
        self.limits = limits
        self.run = run
        read_fd, self.result_w = os.pipe()
        self.result_r = read_fd
        command = [*command[:-1], command[-1], str(self.result_w)]
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(self.result_w,),
            start_new_session=True,
        )
        os.close(self.result_w)
        self.buffer = bytearray()
        self.kept = bytearray()
        self.output_seen = 0
        self.message_seen = 0
        self.open_fds = {self.result_r, self.proc.stdout.fileno()}  # type: ignore[union-attr]
        self.phase = "starting"
        self.closed = False

    def send(self, body: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(struct.pack("!I", len(body)) + body)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise _Stop(self._exit_reason()) from None

    def expect(self, deadline: float, limit_text: str) -> object:
        """The child's next message, read before ``deadline`` (monotonic)."""
        out_fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        while True:
            message = self._next_frame()
            if message is not None:
                return message
            if self.result_r not in self.open_fds:
                raise _Stop(self._exit_reason())
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise _Stop(f"timed out after {limit_text} while {self.phase}")
            ready, _, _ = select.select(list(self.open_fds), [], [], wait)
            if out_fd in ready:
                self._read_output(out_fd)
            if self.result_r in ready:
                chunk = os.read(self.result_r, 1 << 20)
                if not chunk:
                    self.open_fds.discard(self.result_r)
                    continue
                self.message_seen += len(chunk)
                if self.message_seen > self.limits.message_bytes:
                    raise _Stop(
                        f"broke the grader's protocol: sent more than "
                        f"{self.limits.message_bytes // 2**20} MB of messages while {self.phase}",
                        violation=True,
                    )
                self.buffer += chunk

    def _next_frame(self) -> object | None:
        if len(self.buffer) < 4:
            return None
        (size,) = struct.unpack("!I", self.buffer[:4])
        if size > self.limits.frame_bytes:
            raise _Stop(
                f"broke the grader's protocol: a message of {size} bytes (limit "
                f"{self.limits.frame_bytes}) while {self.phase}",
                violation=True,
            )
        if len(self.buffer) < 4 + size:
            return None
        body = bytes(self.buffer[4 : 4 + size])
        del self.buffer[: 4 + size]
        try:
            return wire.decode_message(body)
        except wire.WireError as error:
            raise _Stop(
                f"broke the grader's protocol: {error} while {self.phase}", violation=True
            ) from None

    def _read_output(self, out_fd: int) -> None:
        chunk = os.read(out_fd, 65536)
        if not chunk:
            self.open_fds.discard(out_fd)
            return
        self.output_seen += len(chunk)
        if len(self.kept) < self.limits.output_chars:
            self.kept += chunk[: self.limits.output_chars - len(self.kept)]
        if self.output_seen > self.limits.flood_bytes:
            raise _Stop(
                f"stopped: wrote more than {self.limits.flood_bytes // 1024 // 1024} MB "
                f"of output while {self.phase}"
            )

    def _exit_reason(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        code = self.proc.returncode
        where = f" while {self.phase}"
        if code is None:
            return "the process closed its channel without finishing" + where
        if code < 0:
            sig = signal.Signals(-code)
            if sig == signal.SIGXCPU:
                return "the CPU time limit was reached" + where
            if sig == signal.SIGXFSZ:
                return "the file size limit was reached" + where
            if sig in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS):
                return (
                    f"the process crashed ({sig.name}; often memory exhausted, limit "
                    f"{self.limits.memory_mb} MB)" + where
                )
            return f"the process was killed by {sig.name}" + where
        return f"the process exited with status {code} before finishing (os._exit / sys.exit?)" + (
            where
        )

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.proc.kill()
        self.proc.wait()
        for fd in (self.result_r,):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(Exception):
            if self.proc.stdin:
                self.proc.stdin.close()
        with contextlib.suppress(Exception):
            rest = self.proc.stdout.read() if self.proc.stdout else b""  # type: ignore[union-attr]
            if rest and len(self.kept) < self.limits.output_chars:
                self.kept += rest[: self.limits.output_chars - len(self.kept)]
            self.output_seen += len(rest or b"")
        with contextlib.suppress(Exception):
            self.proc.stdout.close()  # type: ignore[union-attr]
        self.run.output_bytes += self.output_seen
        if self.kept:
            self.run.output += self.kept.decode("utf-8", "replace")


def _merge_evidence(run: SandboxRun, denials: object, attempts: object) -> list[str]:
    for item in list(denials)[:200] if isinstance(denials, list) else []:
        if isinstance(item, tuple | list) and len(item) == 2:
            entry = (str(item[0])[:100], str(item[1])[:300])
            if entry not in run.denials and len(run.denials) < 200:
                run.denials.append(entry)
    found = [str(a)[:300] for a in (attempts if isinstance(attempts, list) else [])][:200]
    for attempt in found:
        if attempt not in run.forbidden and len(run.forbidden) < 200:
            run.forbidden.append(attempt)
    return found


def _raised(value: object) -> tuple[str, str] | None:
    if value is None:
        return None
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return (value[0][:200], value[1][:2000])
    raise _Stop("broke the grader's protocol: a malformed exception in CallDone", violation=True)


def _child_env(drop: tuple[int, int] | None) -> dict[str, str]:
    """The child's whole environment (nothing of the grader's)."""
    env = {
        "HOME": isolation.WORK,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }
    if drop is not None:
        env["COURSE_SANDBOX_DROP"] = f"{drop[0]}:{drop[1]}"
    return env


def _one_process(
    header: dict,
    pending: list[Call],
    limits: Limits,
    run: SandboxRun,
    packages: tuple[str, ...],
    modules: dict[str, Path],
    budget_end: float,
) -> tuple[list[str], str | None, bool]:
    """Run one child; fill ``run``; return (keys answered, why it stopped early, violation)."""
    files = {"wire.py": _HERE / "wire.py", "policy.py": _HERE / "policy.py"}
    files["_sandbox_child.py"] = _HERE / "_sandbox_child.py"
    files["guard.py"] = _HERE / "guard.py"
    module_files = {}
    for name, path in modules.items():
        module_files[name] = f"{name}.py"
        files[f"{name}.py"] = path
    view = isolation.python_view(packages, files)
    drop = isolation.drop_target()
    env = _child_env(drop)
    argv = [isolation.interpreter(), "-I", "-S", "-B", f"{isolation.LIB}/_sandbox_child.py"]
    command = isolation.bwrap_command(argv, view, env=env)
    job = dict(header)
    job["modules"] = module_files
    job["readable"] = [isolation.SITE, isolation.LIB, *view.targets()]
    job["limits"] = dict(job["limits"], nproc=limits.nproc if drop else None)
    job["calls"] = pickle.dumps(
        {c.key: (c.function, tuple(c.args), dict(c.kwargs), c.source) for c in pending},
        protocol=4,
    )
    answered: list[str] = []
    child = _Child(command, limits, run)
    run.processes += 1
    run.user = "nobody" if drop else "this user (in a user namespace)"
    try:
        child.send(pickle.dumps(job, protocol=4))
        started = child.expect(
            min(time.monotonic() + limits.start_timeout, budget_end),
            f"{limits.start_timeout:g} s",
        )
        if not isinstance(started, wire.Started):
            raise _Stop(f"broke the grader's protocol: {type(started).__name__} before Started")
        if drop is not None and (not started.dropped or started.uid != drop[0]):
            raise isolation.IsolationError(
                f"the sandbox did not drop root to uid {drop[0]} (it runs as {started.uid}): "
                "refusing to run student code with the grader's rights"
            )
        child.phase = "running the answer cells"
        cells_end = min(time.monotonic() + limits.cells_timeout, budget_end)
        names = [name for name, _ in header["cells"]]
        for expected_name in names:
            message = child.expect(cells_end, f"{limits.cells_timeout:g} s")
            if not isinstance(message, wire.CellDone) or message.name != expected_name:
                raise _Stop(
                    f"broke the grader's protocol: {type(message).__name__} while waiting "
                    f"for cell {expected_name}",
                    violation=True,
                )
            run.cell_errors[expected_name] = (
                None if message.error is None else str(message.error)[:2000]
            )
        message = child.expect(cells_end, f"{limits.cells_timeout:g} s")
        if not isinstance(message, wire.CellsDone):
            raise _Stop(
                f"broke the grader's protocol: {type(message).__name__} instead of CellsDone",
                violation=True,
            )
        _merge_evidence(run, message.denials, message.attempts)
        for call in pending:
            if time.monotonic() >= budget_end:
                return answered, None, False
            child.phase = f"running {call.key}"
            child.send(wire.encode_message(wire.RunCall(key=call.key)))
            end = min(time.monotonic() + limits.call_timeout, budget_end)
            message = child.expect(end, f"{limits.call_timeout:g} s")
            if not isinstance(message, wire.CallDone) or message.key != call.key:
                got = getattr(message, "key", type(message).__name__)
                raise _Stop(
                    f"broke the grader's protocol: an answer for {got!r} while {child.phase}",
                    violation=True,
                )
            result = CallResult(key=call.key, seconds=max(0.0, float(message.seconds)))
            result.raised = _raised(message.raised)
            if result.raised is None:
                result.output = message.value
            result.args_after = message.args_after  # type: ignore[assignment]
            result.kwargs_after = message.kwargs_after  # type: ignore[assignment]
            result.forbidden = _merge_evidence(run, message.denials, message.attempts)[:50]
            run.results[call.key] = result
            answered.append(call.key)
            child.phase = f"after {call.key}"
        child.phase = "finishing"
        child.send(wire.encode_message(wire.Finish()))
        message = child.expect(time.monotonic() + 10.0, "10 s")
        if isinstance(message, wire.Finished):
            _merge_evidence(run, message.denials, message.attempts)
        return answered, None, False
    except _Stop as stop:
        if child.phase == "starting":
            # nothing of the student's has run yet: the sandbox itself could not start
            child.close()
            raise isolation.IsolationError(
                f"the sandbox did not start ({stop.reason}); its output: "
                f"{run.output[-2000:] or 'none'}"
            ) from None
        return answered, stop.reason, stop.violation
    finally:
        child.close()


def run_functions(
    cells: list[tuple[str, str]],
    calls: list[Call],
    limits: Limits | None = None,
    *,
    packages: tuple[str, ...] = ("numpy",),
    preload: list[str] | None = None,
    guards: tuple[str, ...] = ("forbid_ready_made",),
    remove: tuple[str, ...] = (),
    blocked: tuple[str, ...] = BLOCKED,
    max_processes: int = 12,
    audit: bool = True,
) -> SandboxRun:
    """Run ``cells`` (``(name, source)`` pairs, in order), then each call, in the sandbox.

    Returns a :class:`SandboxRun` with a :class:`CallResult` for every call. When a call does
    not finish (timeout, memory, crash, flood, protocol), its result gets the reason in
    ``failure``, the other calls of its ``group`` are marked as skipped, and the remaining calls
    run in a new process (at most ``max_processes`` in all, within ``limits.total_seconds``).
    ``packages`` are the distributions the container shows besides the standard library;
    ``preload`` names modules imported before the limits apply (``torch`` when cases hold
    ``torch.nn`` modules); ``guards`` names the context managers of ``guard.py`` active while the
    student's code runs (diagnostics); ``remove`` lists dotted names deleted before the student's
    code runs (``numpy.convolve``); ``blocked`` names libraries that cannot be imported.
    ``audit=False`` leaves out the audit hook of :mod:`policy` (the second layer), so that tests
    can show what the container alone allows.
    """
    limits = limits or Limits()
    isolation.check_isolation()
    run = SandboxRun()
    header = {
        "cells": [(str(n), str(s)) for n, s in cells],
        "preload": list(preload or []),
        "guards": list(guards),
        "remove": list(remove),
        "blocked": list(blocked),
        "audit": bool(audit),
        "limits": {
            "memory_mb": limits.memory_mb,
            "cpu_seconds": limits.cpu_seconds,
            "file_bytes": limits.file_bytes,
            "output_chars": limits.output_chars,
        },
    }
    modules = _helper_modules(calls)
    pending = list(calls)
    budget_end = time.monotonic() + limits.total_seconds
    while pending:
        if run.processes >= max_processes:
            _fail(run, pending, "not run: too many crashed processes for this submission")
            break
        if time.monotonic() >= budget_end:
            _fail(
                run,
                pending,
                f"not run: the submission's time budget of {limits.total_seconds:g} s was used up",
            )
            run.incidents.append(f"time budget of {limits.total_seconds:g} s used up")
            break
        answered, stop, violation = _one_process(
            header, pending, limits, run, packages, modules, budget_end
        )
        done = set(answered)
        rest = [c for c in pending if c.key not in done]
        if stop is None:
            if rest:
                pending = rest
                continue
            break
        run.incidents.append(stop)
        if violation:
            run.violations.append(stop)
        if not rest:
            break
        if not answered and (
            "running the answer cells" in stop or "starting" in stop or "Started" in stop
        ):
            _fail(run, rest, stop)
            run.cell_errors.setdefault("*", stop)
            break
        culprit = rest[0]
        run.results[culprit.key] = CallResult(culprit.key, failure=stop)
        skipped = f"not run: an earlier case of {culprit.group or culprit.function} failed ({stop})"
        remaining = []
        for call in rest[1:]:
            if culprit.group and call.group == culprit.group:
                run.results[call.key] = CallResult(call.key, failure=skipped)
            else:
                remaining.append(call)
        pending = remaining
    return run


def _fail(run: SandboxRun, calls: list[Call], reason: str) -> None:
    for call in calls:
        run.results.setdefault(call.key, CallResult(call.key, failure=reason))
