"""The process that runs a student's code for the grader (started by ``sandbox.py``).

Run as ``python -I -B .../_sandbox_child.py JOB_FILE RESULT_FD`` (a script, so that course_lib and
PyTorch are not imported when the job does not need them). It reads the job (the cells' source
and the calls to make), deletes the job file, blocks importing libraries that the exercises do not
allow and the job does not need (:class:`BlockedImports`), limits itself
(memory, CPU time, file size, processes), installs an audit hook that denies files outside its
working directory and the Python installation, processes, sockets, ctypes and raising its own
limits, and only then runs the student's cells and calls. Every answer goes back through
``RESULT_FD`` as a frame of plain data (see :func:`encode`): no object of the student's ever
reaches the grader.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.abc
import importlib.util
import io
import os
import pickle
import resource
import struct
import sys
import time
import traceback

import numpy as np

MAX_DEPTH = 20
MAX_ITEMS = 100_000

# Audit events the student's code may never raise (prefix match on the event name).
DENIED_EVENTS = (
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "os.startfile",
    "subprocess.Popen",
    "_posixsubprocess",
    "pty.spawn",
    "signal.pthread_kill",
    "socket.",
    "ctypes.",
    "sqlite3.connect",
    "sys.addaudithook",
    "sys.remote_exec",
    "resource.setrlimit",
    "resource.prlimit",
    "webbrowser.open",
    "urllib.Request",
    "http.client.connect",
    "ftplib.",
    "smtplib.",
    "os.setuid",
    "os.setgid",
)
# Events that change a file: allowed only inside the working directory.
WRITE_EVENTS = (
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.symlink",
    "os.link",
    "os.truncate",
    "os.utime",
    "shutil.",
)
READ_DIR_EVENTS = ("os.listdir", "os.scandir")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class BlockedImports(importlib.abc.MetaPathFinder):
    """Refuse to import (and record) libraries a student's NumPy code has no use for."""

    def __init__(self, names: list[str], attempts: list[str]) -> None:
        self.names = tuple(names)
        self.attempts = attempts

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        top = fullname.partition(".")[0]
        if top in self.names:
            if len(self.attempts) < 200:
                self.attempts.append(f"import {fullname}")
            raise ImportError(f"import of {fullname} is not allowed in this exercise: use NumPy")
        return None


class CappedWriter(io.TextIOBase):
    """A text stream that keeps the first ``cap`` characters and only counts the rest."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.parts: list[str] = []
        self.kept = 0
        self.total = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        s = str(s)
        self.total += len(s)
        if self.kept < self.cap:
            part = s[: self.cap - self.kept]
            self.parts.append(part)
            self.kept += len(part)
        return len(s)

    def text(self) -> str:
        return "".join(self.parts)


def encode(value: object, depth: int = 0) -> tuple:
    """Turn a returned value into nested tuples of plain builtins, tagged by kind.

    Only exact builtin types and NumPy arrays/scalars are kept (their data copied), so a value
    cannot carry methods of the student's (an ``__eq__`` that always says yes) to the judge.
    """
    if depth > MAX_DEPTH:
        return ("u", "nested too deep", "")
    kind = type(value)
    if value is None or kind in (bool, int, float, complex, str, bytes):
        return ("p", value)
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(np.asarray(value))
        if array.dtype.hasobject:
            return ("u", "numpy.ndarray of dtype object", "")
        return ("a", array.dtype.str, tuple(int(n) for n in array.shape), array.tobytes())
    if isinstance(value, np.generic):
        scalar = np.asarray(value)
        if scalar.dtype.hasobject:
            return ("u", "numpy object scalar", "")
        return ("s", scalar.dtype.str, scalar.tobytes())
    if kind in (tuple, list, set, frozenset):
        items = list(value)
        if len(items) > MAX_ITEMS:
            return ("u", f"{kind.__name__} of {len(items)} items", "")
        tag = {tuple: "t", list: "l", set: "S", frozenset: "F"}[kind]
        return (tag, [encode(item, depth + 1) for item in items])
    if kind is dict:
        if len(value) > MAX_ITEMS:
            return ("u", f"dict of {len(value)} items", "")
        return ("d", [(encode(k, depth + 1), encode(v, depth + 1)) for k, v in value.items()])
    try:
        text = repr(value)[:200]
    except Exception:
        text = "<repr failed>"
    return ("u", f"{kind.__module__}.{kind.__qualname__}", text)


class Channel:
    """Length-prefixed pickled frames of plain data, written to the grader's pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, *message: object) -> None:
        data = pickle.dumps(message, protocol=4)
        view = memoryview(struct.pack("!Q", len(data)) + data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]


def limit_resources(limits: dict) -> None:
    def cap(which: int, value: int) -> None:
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else value + 1))

    mapped = 0
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmSize:"))
        mapped = int(line.split()[1]) * 1024
    cap(resource.RLIMIT_AS, mapped + limits["memory_mb"] * 1024 * 1024)
    cap(resource.RLIMIT_CPU, int(limits["cpu_seconds"]))
    cap(resource.RLIMIT_FSIZE, limits["file_bytes"])
    cap(resource.RLIMIT_CORE, 0)
    if limits.get("nproc") is not None:
        with contextlib.suppress(ValueError, OSError):
            cap(resource.RLIMIT_NPROC, limits["nproc"])


def install_audit_hook(workdir: str, readable: list[str], denials: list[tuple[str, str]]) -> None:
    """Deny, from now on, what a student's function has no business doing (see module doc)."""
    workdir = os.path.realpath(workdir)
    roots = tuple(os.path.realpath(p) for p in readable if p)
    allowed_devices = ("/dev/null", "/dev/urandom", "/dev/random")
    denied = DENIED_EVENTS
    write_events = WRITE_EVENTS
    join = os.path.join
    realpath = os.path.realpath
    fspath = os.fspath

    def inside(path: str, bases: tuple[str, ...]) -> bool:
        return any(path == b or path.startswith(b + os.sep) for b in bases)

    def resolve(path: object) -> str | None:
        if isinstance(path, int):
            return None
        try:
            text = fspath(path)
            if isinstance(text, bytes):
                text = text.decode("utf-8", "replace")
            return realpath(join(workdir, text))
        except Exception:
            return "<unresolvable>"

    def deny(event: str, detail: str) -> None:
        if len(denials) < 200:
            denials.append((event, detail[:300]))
        raise PermissionError(f"denied by the grader's sandbox: {event} {detail[:200]}")

    def hook(event: str, args: tuple) -> None:
        if event.startswith(denied):
            deny(event, repr(args)[:300])
        elif event == "open":
            path = resolve(args[0])
            if path is None:
                return
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
                isinstance(flags, int) and flags & WRITE_FLAGS
            )
            if inside(path, (workdir,)) or path in allowed_devices:
                return
            if writing or not inside(path, roots):
                deny("open", f"{path} ({'write' if writing else 'read'})")
        elif event.startswith(write_events):
            for arg in args:
                if isinstance(arg, (str, bytes, os.PathLike)):
                    path = resolve(arg)
                    if path is not None and not inside(path, (workdir,)):
                        deny(event, str(path))
        elif event in READ_DIR_EVENTS:
            path = resolve(args[0] if args and args[0] is not None else ".")
            if path is not None and not inside(path, (workdir, *roots)):
                deny(event, str(path))

    sys.addaudithook(hook)


def main() -> None:
    job_file, result_fd = sys.argv[1], int(sys.argv[2])
    with open(job_file, "rb") as f:
        job = pickle.load(f)
    os.remove(job_file)
    channel = Channel(result_fd)
    workdir = os.getcwd()

    # Everything the grader sends is decoded before any student code runs. course_lib is a bare
    # package here (its __init__ would import PyTorch): the cases may name its plain functions.
    import types

    package = types.ModuleType("course_lib")
    package.__path__ = [job["course_lib_dir"]]
    sys.modules["course_lib"] = package
    calls = [(key, fn, pickle.loads(payload), code) for key, fn, payload, code in job["calls"]]
    for module in job.get("preload", []):
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    guard = None
    with contextlib.suppress(Exception):
        spec = importlib.util.spec_from_file_location("course_guard", job["guard_path"])
        guard = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(guard)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    blocked_attempts: list[str] = []
    blocked = [name for name in job.get("blocked", []) if name not in sys.modules]
    for name in [m for m in sys.modules if m.partition(".")[0] in job.get("unload", [])]:
        del sys.modules[name]
    blocked += [name for name in job.get("unload", []) if name not in blocked]
    sys.meta_path.insert(0, BlockedImports(blocked, blocked_attempts))

    limit_resources(job["limits"])
    denials: list[tuple[str, str]] = []
    install_audit_hook(workdir, job["readable"], denials)

    out = CappedWriter(job["limits"]["output_chars"])
    sys.stdout = sys.stderr = out
    namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
    guards: list = []
    forbid = contextlib.ExitStack()
    if guard is not None:
        for name in job.get("guards", ["forbid_ready_made"]):
            guards.append(forbid.enter_context(getattr(guard, name)()))
    blocked_attempts.clear()  # the guards' own imports of what is blocked are not the student's

    def sources() -> list[list]:
        found = [blocked_attempts]
        for active in guards:
            with contextlib.suppress(Exception):
                found.append(list(active.attempts))
        return found

    def attempts(since: list[int] | None = None) -> list:
        found = []
        for index, source in enumerate(sources()):
            start = since[index] if since and index < len(since) else 0
            with contextlib.suppress(Exception):
                found += [str(a)[:300] for a in source[start:]]
        return found[:200]

    with forbid:
        for name, source in job["cells"]:
            error = None
            try:
                exec(compile(source, f"<cell {name}>", "exec"), namespace)
            except BaseException as exc:  # a cell that fails leaves the others to run
                error = f"{type(exc).__name__}: {exc}"[:2000]
                if isinstance(exc, SyntaxError):
                    error = "".join(traceback.format_exception_only(exc))[-2000:]
            channel.send("cell", name, error)
        channel.send("ready", list(denials), attempts())
        for key, function, (args, kwargs), code in calls:
            channel.send("start", key)
            seen = [len(source) for source in sources()]
            started = time.perf_counter()
            fn = namespace.get(function)
            try:
                if code is not None:  # the exercise's own visible checks, run like its cell
                    exec(compile(code, f"<visible tests {key}>", "exec"), namespace)
                    output = encode(None)
                elif not callable(fn):
                    raise NameError(f"name '{function}' is not defined")
                else:
                    output = encode(fn(*args, **kwargs))
            except BaseException as exc:
                try:
                    message = str(exc)[:2000]
                except BaseException:
                    message = "<message could not be read>"
                output = ("r", type(exc).__name__, message)
            seconds = time.perf_counter() - started
            try:
                after = (encode(tuple(args)), encode(dict(kwargs)))
            except BaseException:
                after = (("u", "inputs", ""), ("u", "inputs", ""))
            channel.send("done", key, output, after, seconds, list(denials), attempts(seen))
    channel.send("end", out.text(), out.total, list(denials), attempts())
    os._exit(0)


if __name__ == "__main__":
    main()
