"""The process that runs a student's code for the grader, inside the container of ``isolation``.

Started by :mod:`course_lib.grading.sandbox` as
``python -I -S -B /sandbox/lib/_sandbox_child.py RESULT_FD`` inside a bubblewrap container that
shows only the interpreter, NumPy (and, when the job needs them, the packages it names) and the
grader's helper files in ``/sandbox/lib``. In this order it:

1. drops root to the user the grader names (``nobody``) and checks that no capability is left;
2. reads the job from standard input (the cells' source and the arguments of every call, pickled
   by the grader) and says ``Started``;
3. imports what the job preloads, removes the ready-made operators the exercise forbids from
   NumPy (``numpy.convolve`` and the C functions behind it), blocks importing the libraries the
   exercise does not allow, limits itself (memory, CPU time, file size, processes) and installs
   the audit hook of :mod:`policy`;
4. runs the answer cells, then runs each call when the grader asks for it (``RunCall``) and
   answers with its result (``CallDone``) in the plain data of :mod:`wire`.

No object of the student's ever reaches the grader, and the grader decides what runs when.
"""

from __future__ import annotations

import os
import sys


def _drop(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid:
        raise SystemExit("the sandbox could not drop its privileges")
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("CapEff:", "CapPrm:")) and int(line.split()[1], 16):
                raise SystemExit("the sandbox still holds capabilities after dropping root")


def main() -> None:
    result_fd = int(sys.argv[1])
    drop = os.environ.get("COURSE_SANDBOX_DROP", "")
    dropped = False
    if drop:
        uid, gid = (int(n) for n in drop.split(":"))
        _drop(uid, gid)
        dropped = True
    os.environ.pop("COURSE_SANDBOX_DROP", None)

    import builtins
    import contextlib
    import importlib
    import importlib.abc
    import importlib.util
    import io
    import pickle
    import resource
    import struct
    import time
    import traceback
    import types

    lib = "/sandbox/lib"

    def load(name: str, path: str) -> types.ModuleType:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module

    sys.path.insert(0, "/sandbox/site")
    wire = load("course_wire", f"{lib}/wire.py")
    policy = load("course_policy", f"{lib}/policy.py")

    def read_exactly(n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = os.read(0, n - len(data))
            if not chunk:
                raise SystemExit("the grader closed the job channel")
            data += chunk
        return bytes(data)

    def read_frame() -> bytes:
        (size,) = struct.unpack("!I", read_exactly(4))
        return read_exactly(size)

    def send(message: object) -> None:
        write(wire.encode_message(message))

    def write(body: bytes) -> None:
        view = memoryview(wire.frame(body))
        while view:
            view = view[os.write(result_fd, view) :]

    # the job: the grader's own data (trusted), pickled; functions in the arguments come from
    # the grader's helper modules shipped in /sandbox/lib
    header = pickle.loads(read_frame())
    for module_name, file_name in header["modules"].items():
        parts = module_name.split(".")
        for depth in range(1, len(parts)):
            parent = ".".join(parts[:depth])
            if parent not in sys.modules:
                package = types.ModuleType(parent)
                package.__path__ = []
                sys.modules[parent] = package
        load(module_name, f"{lib}/{file_name}")
    for module in header["preload"]:
        importlib.import_module(module)
    calls = pickle.loads(header["calls"])  # after the modules their functions come from
    send(wire.Started(uid=os.getuid(), dropped=dropped))

    # ready-made operators are not there to call (the C functions behind numpy.convolve too)
    for dotted in header["remove"]:
        owner_name, _, attribute = dotted.rpartition(".")
        owner = sys.modules.get(owner_name)
        if owner is None:
            with contextlib.suppress(Exception):
                owner = importlib.import_module(owner_name)
        if owner is not None and hasattr(owner, attribute):
            with contextlib.suppress(AttributeError, TypeError):
                delattr(owner, attribute)

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)

    attempts: list[str] = []

    class BlockedImports(importlib.abc.MetaPathFinder):
        """Refuse (and record) importing libraries the exercise does not allow."""

        def __init__(self, names: list[str]) -> None:
            self.names = tuple(names)

        def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
            if fullname.partition(".")[0] in self.names:
                if len(attempts) < 200:
                    attempts.append(f"import {fullname}")
                message = f"import of {fullname} is not allowed in this exercise: use NumPy"
                raise ImportError(message)
            return None

    blocked = [n for n in header["blocked"] if n not in sys.modules]
    for name in [m for m in sys.modules if m.partition(".")[0] == "course_lib"]:
        # the helper modules stay reachable for the arguments that use them, not by import
        sys.modules.pop(name, None)
    sys.meta_path.insert(0, BlockedImports([*blocked, "course_lib"]))

    guard = load("course_guard", f"{lib}/guard.py") if header["guards"] else None

    limits = header["limits"]

    def cap(which: int, value: int) -> None:
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else value + 1))

    mapped = 0
    with contextlib.suppress(OSError, ValueError, StopIteration), open("/proc/self/status") as f:
        mapped = int(next(x for x in f if x.startswith("VmSize:")).split()[1]) * 1024
    cap(resource.RLIMIT_AS, mapped + limits["memory_mb"] * 1024 * 1024)
    cap(resource.RLIMIT_CPU, int(limits["cpu_seconds"]))
    cap(resource.RLIMIT_FSIZE, limits["file_bytes"])
    cap(resource.RLIMIT_CORE, 0)
    if limits.get("nproc") is not None:
        with contextlib.suppress(ValueError, OSError):
            cap(resource.RLIMIT_NPROC, limits["nproc"])

    class CappedWriter(io.TextIOBase):
        """Keeps the first ``cap`` characters written and only counts the rest."""

        def __init__(self, cap: int) -> None:
            self.cap, self.parts, self.kept, self.total = cap, [], 0, 0

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

    out = CappedWriter(limits["output_chars"])
    sys.stdout = sys.stderr = out
    namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
    active: list = []
    stack = contextlib.ExitStack()
    if guard is not None:
        for name in header["guards"]:
            active.append(stack.enter_context(getattr(guard, name)()))
    attempts.clear()  # the guards' own imports are not the student's
    # the audit hook last: from here on the guards' profile hook cannot be switched off, and
    # the guards are never left (the process ends with os._exit)
    denials: list[tuple[str, str]] = []
    audit = policy.AuditPolicy(header["readable"], [os.getcwd(), "/tmp"])
    if header.get("audit", True):
        policy.install_audit_hook(audit, denials)

    def evidence_since(marks: list[int]) -> list[str]:
        sources = [attempts] + [list(getattr(a, "attempts", [])) for a in active]
        found: list[str] = []
        for index, source in enumerate(sources):
            start = marks[index] if index < len(marks) else 0
            found += [str(a)[:300] for a in source[start:]]
        return found[:200]

    def marks() -> list[int]:
        return [len(attempts)] + [len(getattr(a, "attempts", [])) for a in active]

    def safe_text(exc: BaseException) -> str:
        try:
            return str(exc)[:2000]
        except BaseException:
            return "<message could not be read>"

    for name, source in header["cells"]:
        error = None
        try:
            exec(compile(source, f"<cell {name}>", "exec"), namespace)
        except BaseException as exc:  # a cell that fails leaves the others to run
            error = f"{type(exc).__name__}: {safe_text(exc)}"[:2000]
            if isinstance(exc, SyntaxError):
                error = "".join(traceback.format_exception_only(exc))[-2000:]
        send(wire.CellDone(name=name, error=error))
    send(wire.CellsDone(denials=list(denials), attempts=evidence_since([])))
    seen_denials = len(denials)
    while True:
        request = wire.decode_message(read_frame())
        if isinstance(request, wire.Finish):
            break
        key = request.key
        function, args, kwargs, code = calls[key]
        before = marks()
        started = time.perf_counter()
        value: object = None
        raised = None
        try:
            if code is not None:  # the exercise's own visible checks, run like its cell
                exec(compile(code, f"<visible tests {key}>", "exec"), namespace)
            else:
                fn = namespace.get(function)
                if not callable(fn):
                    raise NameError(f"name '{function}' is not defined")
                value = fn(*args, **kwargs)
        except BaseException as exc:
            raised = (type(exc).__name__, safe_text(exc))
        seconds = time.perf_counter() - started
        fields = {
            "key": key,
            "value": value,
            "raised": raised,
            "args_after": tuple(args),
            "kwargs_after": dict(kwargs),
            "seconds": float(seconds),
            "denials": list(denials[seen_denials:]),
            "attempts": evidence_since(before),
        }
        try:
            body = wire.encode_message(wire.CallDone(**fields))
        except BaseException:  # a value whose conversion runs the student's code and fails
            for name in ("value", "args_after", "kwargs_after"):
                try:
                    wire.encode_value(fields[name])
                except BaseException:
                    fields[name] = wire.Unsupported(name, "could not be converted")
            body = wire.encode_message(wire.CallDone(**fields))
        write(body)
        seen_denials = len(denials)
    send(
        wire.Finished(
            output="".join(out.parts),
            output_total=int(out.total),
            denials=list(denials[seen_denials:]),
            attempts=evidence_since([]),
        )
    )
    os._exit(0)


if __name__ == "__main__":
    try:
        main()
    except SystemExit as stop:
        os.write(2, f"sandbox: {stop}".encode())
        os._exit(2)
    except BaseException as error:  # the grader's own failure: said on the raw output
        os.write(2, f"sandbox: {type(error).__name__}: {error}\n".encode())
        try:
            import traceback

            os.write(2, traceback.format_exc()[-3000:].encode())
        finally:
            os._exit(3)
