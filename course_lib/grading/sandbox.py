"""Run a student's functions in a separate, limited process and get back only their answers.

The grader never runs a student's code in its own process. :func:`run_functions` starts a fresh
``python -I`` in an empty temporary directory with a scrubbed environment; that process
(``_sandbox_child``) limits its memory (``RLIMIT_AS``), CPU time, file size and processes,
drops root to ``nobody`` where the Python installation allows it, and installs an audit hook
that denies reading files outside its directory and the Python installation (so the hidden
tests, the gradebook and other students' submissions stay out of reach), starting processes,
sockets, ctypes and raising its own limits. The student's cells and calls then run under
``guard.forbid_ready_made()``.

The grader waits for each call with a wall-clock limit, reads the output with a cap, and gets
back only plain data (arrays, numbers, tuples, a :class:`Raised`), decoded without importing
anything. A call that loops, eats the memory, floods the output or kills its process is
reported with the reason, and the remaining calls (of other tests) run in a new process.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import pwd
import select
import shutil
import signal
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "BLOCKED",
    "Call",
    "CallResult",
    "Limits",
    "SandboxRun",
    "Unsupported",
    "run_functions",
]


#: Libraries a student's NumPy code may not import (unless a case needs them loaded).
BLOCKED = ("torch", "torchvision", "scipy", "course_lib", "tensorflow", "jax", "cv2", "skimage")


@dataclass(frozen=True)
class Limits:
    """What one sandboxed process may use.

    ``call_timeout`` is the wall-clock limit of one call, ``cells_timeout`` of running the cells,
    ``memory_mb`` the address-space limit (on top of what the interpreter and the preloaded
    modules map), ``output_chars`` how much printed text is kept (the rest is counted and
    dropped), ``flood_bytes`` how much output ends the process, ``nproc`` the process limit
    applied when the process runs as ``nobody``.
    """

    call_timeout: float = 10.0
    cells_timeout: float = 20.0
    memory_mb: int = 2048
    cpu_seconds: int = 120
    file_bytes: int = 16 * 1024 * 1024
    output_chars: int = 4000
    flood_bytes: int = 8 * 1024 * 1024
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
    """What came back for one call: ``output`` (a value or a ``checks.Raised``-like tuple) or
    ``failure`` (why there is no output: timeout, memory, crash, skipped)."""

    key: str
    output: object = None
    raised: tuple[str, str] | None = None
    args_after: tuple | None = None
    kwargs_after: dict | None = None
    seconds: float = 0.0
    failure: str | None = None
    forbidden: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Unsupported:
    """A returned value the sandbox does not carry back (its type and a short repr)."""

    type_name: str
    text: str

    def __repr__(self) -> str:
        return f"<{self.type_name} {self.text}>"


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
    user: str = ""


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) == ("builtins", "complex"):
            return complex
        raise pickle.UnpicklingError(f"refused {module}.{name}")


def _decode(value: object) -> object:
    """Rebuild a value from the child's tagged plain data (see ``_sandbox_child.encode``)."""
    if not isinstance(value, tuple) or not value:
        raise ValueError("malformed answer")
    tag = value[0]
    if tag == "p":
        return value[1]
    if tag == "a":
        dtype = np.dtype(value[1])
        if dtype.hasobject:
            raise ValueError("object array")
        return np.frombuffer(value[3], dtype=dtype).reshape(value[2]).copy()
    if tag == "s":
        dtype = np.dtype(value[1])
        if dtype.hasobject:
            raise ValueError("object scalar")
        return np.frombuffer(value[2], dtype=dtype)[0]
    if tag in ("t", "l", "S", "F"):
        items = [_decode(v) for v in value[1]]
        return {"t": tuple, "l": list, "S": set, "F": frozenset}[tag](items)
    if tag == "d":
        return {_decode(k): _decode(v) for k, v in value[1]}
    if tag == "u":
        return Unsupported(str(value[1]), str(value[2]))
    raise ValueError(f"unknown tag {tag!r}")


def _readable_roots() -> list[str]:
    """The Python installation and the course_lib package: what the child may read."""
    import course_lib

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(course_lib.__file__).parent)}
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        with contextlib.suppress(KeyError):
            roots.add(sysconfig.get_paths()[name])
    # not this process's sys.path: it may hold the course folder (python -m, pytest)
    return sorted(roots)


def _world_can_reach(path: str) -> bool:
    """Whether ``nobody`` can traverse to ``path`` and read it (every parent o+x, it o+r)."""
    path = os.path.realpath(path)
    parts = Path(path).parents
    try:
        if not all(os.stat(p).st_mode & 0o001 for p in parts):
            return False
        return bool(os.stat(path).st_mode & 0o004)
    except OSError:
        return False


def _drop_to() -> tuple[int, int] | None:
    """(uid, gid) of ``nobody`` when running as root and ``nobody`` can run this Python."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return None
    import course_lib

    needed = [sys.executable, os.path.realpath(sys.executable), str(Path(course_lib.__file__))]
    needed += [p for p in sys.path if p and os.path.isdir(p)]
    if all(_world_can_reach(p) for p in needed):
        return entry.pw_uid, entry.pw_gid
    return None


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.kill()
    proc.wait()


def _describe_exit(proc: subprocess.Popen, memory_mb: int) -> str:
    code = proc.returncode
    if code is not None and code < 0:
        sig = signal.Signals(-code).name
        if -code == signal.SIGXCPU:
            return "the CPU time limit was reached"
        if -code == signal.SIGXFSZ:
            return "the file size limit was reached"
        if -code in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS):
            return f"the process crashed ({sig}; often memory exhausted, limit {memory_mb} MB)"
        return f"the process was killed by {sig}"
    return f"the process exited with status {code} before finishing (os._exit / sys.exit?)"


def _one_process(
    cells: list[tuple[str, str]],
    calls: list[tuple[Call, bytes]],
    limits: Limits,
    run: SandboxRun,
    preload: list[str],
    guards: list[str],
) -> tuple[list[str], str | None]:
    """Run one child; fill ``run``; return (keys answered, reason it stopped early or None)."""
    drop = _drop_to()
    workdir = tempfile.mkdtemp(prefix="course-sandbox-")
    answered: list[str] = []
    try:
        os.chmod(workdir, 0o700)
        job = {
            "cells": cells,
            "calls": [(c.key, c.function, payload, c.source) for c, payload in calls],
            "limits": {
                "memory_mb": limits.memory_mb,
                "cpu_seconds": limits.cpu_seconds,
                "file_bytes": limits.file_bytes,
                "output_chars": limits.output_chars,
                # a process limit is per user: only sensible for the dedicated user nobody
                "nproc": limits.nproc if drop else None,
            },
            "readable": _readable_roots(),
            "preload": preload,
            "guard_path": str(Path(__file__).with_name("guard.py")),
            "guards": guards,
            "blocked": list(BLOCKED),
            "unload": ["course_lib"],
            "course_lib_dir": str(Path(__file__).parents[1]),
        }
        job_file = os.path.join(workdir, "job.pkl")
        with open(job_file, "wb") as f:
            pickle.dump(job, f, protocol=4)
        if drop is not None:
            os.chown(workdir, *drop)
            os.chown(job_file, *drop)
        read_fd, write_fd = os.pipe()
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": workdir,
            "TMPDIR": workdir,
            "LANG": "C.UTF-8",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
        }
        extra = {"user": drop[0], "group": drop[1], "extra_groups": []} if drop else {}
        run.user = "nobody" if drop else pwd.getpwuid(os.geteuid()).pw_name
        child = Path(__file__).with_name("_sandbox_child.py")
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", child, job_file, str(write_fd)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd,),
            start_new_session=True,
            **extra,
        )
        os.close(write_fd)
        run.processes += 1
        stop = _pump(proc, read_fd, calls, limits, run, answered)
        os.close(read_fd)
        return answered, stop
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _pump(
    proc: subprocess.Popen,
    read_fd: int,
    calls: list[tuple[Call, bytes]],
    limits: Limits,
    run: SandboxRun,
    answered: list[str],
) -> str | None:
    """Read frames and output until the child ends, times out or floods; return why it stopped."""
    assert proc.stdout is not None
    out_fd = proc.stdout.fileno()
    buffer = b""
    kept = bytearray()
    output_seen = 0
    deadline = time.monotonic() + limits.cells_timeout
    phase = "running the answer cells"
    current: str | None = None
    ended = False
    open_fds = {read_fd, out_fd}
    try:
        while open_fds:
            wait = deadline - time.monotonic()
            if wait <= 0:
                limit = limits.cells_timeout if current is None else limits.call_timeout
                return f"timed out after {limit:g} s while {phase}"
            ready, _, _ = select.select(list(open_fds), [], [], wait)
            if out_fd in ready:
                chunk = os.read(out_fd, 65536)
                if not chunk:
                    open_fds.discard(out_fd)
                else:
                    output_seen += len(chunk)
                    if len(kept) < limits.output_chars:
                        kept += chunk[: limits.output_chars - len(kept)]
                    if output_seen > limits.flood_bytes:
                        return (
                            f"stopped: wrote more than {limits.flood_bytes // 1024 // 1024} MB "
                            f"of output while {phase}"
                        )
            if read_fd in ready:
                chunk = os.read(read_fd, 1 << 20)
                if not chunk:
                    open_fds.discard(read_fd)
                    continue
                buffer += chunk
                while len(buffer) >= 8:
                    (size,) = struct.unpack("!Q", buffer[:8])
                    if size > 1 << 31:
                        return "the process sent a malformed answer"
                    if len(buffer) < 8 + size:
                        break
                    frame, buffer = buffer[8 : 8 + size], buffer[8 + size :]
                    try:
                        message = _NoGlobals(_BytesReader(frame)).load()
                        current, phase, deadline, ended = _handle(
                            message, run, answered, limits, current, phase, deadline, ended
                        )
                    except Exception as exc:
                        return f"the process sent a malformed answer ({exc})"
        proc.wait(timeout=5)
        if ended:
            return None
        return _describe_exit(proc, limits.memory_mb) + f" while {phase}"
    finally:
        _kill(proc)
        run.output_bytes += output_seen
        if kept:
            run.output += kept.decode("utf-8", "replace")


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.pos + n
        out = bytes(self.data[self.pos : end])
        self.pos += len(out)
        return out

    def readline(self) -> bytes:
        rest = bytes(self.data[self.pos :])
        line, sep, _ = rest.partition(b"\n")
        out = line + sep
        self.pos += len(out)
        return out

    def readinto(self, b: bytearray) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _merge_evidence(run: SandboxRun, denials: object, attempts: object) -> None:
    for event, detail in list(denials)[:200]:
        item = (str(event), str(detail))
        if item not in run.denials:
            run.denials.append(item)
    for attempt in list(attempts)[:200]:
        if str(attempt) not in run.forbidden:
            run.forbidden.append(str(attempt))


def _handle(message, run, answered, limits, current, phase, deadline, ended):
    kind = message[0]
    if kind == "cell":
        run.cell_errors[str(message[1])] = None if message[2] is None else str(message[2])
    elif kind == "ready":
        _merge_evidence(run, message[1], message[2])
        phase, deadline = "waiting for the first call", time.monotonic() + limits.call_timeout
    elif kind == "start":
        current = str(message[1])
        phase = f"running {current}"
        deadline = time.monotonic() + limits.call_timeout
    elif kind == "done":
        key, output, (args_after, kwargs_after), seconds = (
            str(message[1]),
            message[2],
            message[3],
            float(message[4]),
        )
        result = CallResult(key=key, seconds=seconds)
        if output[0] == "r":
            result.raised = (str(output[1]), str(output[2]))
        else:
            result.output = _decode(output)
        result.args_after = _decode(args_after)
        result.kwargs_after = _decode(kwargs_after)
        result.forbidden = [str(a) for a in list(message[6])[:50]]
        run.results[key] = result
        answered.append(key)
        _merge_evidence(run, message[5], message[6])
        current, phase = None, f"after {key}"
        deadline = time.monotonic() + limits.call_timeout
    elif kind == "end":
        _merge_evidence(run, message[3], message[4])
        ended = True
    return current, phase, deadline, ended


def run_functions(
    cells: list[tuple[str, str]],
    calls: list[Call],
    limits: Limits | None = None,
    *,
    preload: list[str] | None = None,
    guards: tuple[str, ...] = ("forbid_ready_made",),
    max_processes: int = 12,
) -> SandboxRun:
    """Run ``cells`` (``(name, source)`` pairs, in order), then each call, in a sandbox.

    Returns a :class:`SandboxRun` with a :class:`CallResult` for every call. When a call does
    not finish (timeout, memory, crash, flood), its result gets the reason in ``failure``, the
    other calls of its ``group`` are marked as skipped, and the remaining calls run in a new
    process (at most ``max_processes`` in all). ``preload`` names modules imported before the
    limits apply (``torch`` when cases hold ``torch.nn`` modules); ``guards`` names the context
    managers of ``guard.py`` active while the student's code runs. Libraries in ``BLOCKED`` that
    are not preloaded cannot be imported by the student's code (recorded as forbidden).
    """
    limits = limits or Limits()
    guards = list(guards)
    run = SandboxRun()
    pending = [(c, pickle.dumps((tuple(c.args), dict(c.kwargs)), protocol=4)) for c in calls]
    by_key = {c.key: c for c in calls}
    cells_failed: str | None = None
    while pending:
        if run.processes >= max_processes:
            for call, _ in pending:
                run.results[call.key] = CallResult(
                    call.key, failure="not run: too many crashed processes for this submission"
                )
            break
        answered, stop = _one_process(cells, pending, limits, run, preload or [], guards)
        done = set(answered)
        rest = [(c, p) for c, p in pending if c.key not in done]
        if stop is None:
            for call, _ in rest:
                run.results[call.key] = CallResult(call.key, failure="no answer came back")
            break
        run.incidents.append(stop)
        if not rest:
            break
        if not answered and "running the answer cells" in stop:
            cells_failed = stop
            for call, _ in rest:
                run.results[call.key] = CallResult(call.key, failure=stop)
            break
        culprit = rest[0][0]
        running = [k for k in (stop.split("while running ", 1)[1:] or [""]) if k in by_key]
        if running:
            culprit = by_key[running[0]]
        run.results[culprit.key] = CallResult(culprit.key, failure=stop)
        skipped = f"not run: an earlier case of {culprit.group or culprit.function} failed ({stop})"
        remaining = []
        for call, payload in rest:
            if call.key == culprit.key:
                continue
            if culprit.group and call.group == culprit.group:
                run.results[call.key] = CallResult(call.key, failure=skipped)
            else:
                remaining.append((call, payload))
        pending = remaining
    if cells_failed:
        run.cell_errors.setdefault("*", cells_failed)
    return run
