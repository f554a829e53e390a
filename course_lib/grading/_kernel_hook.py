"""Audit hook installed in the notebook kernel that ``nbgrader autograde`` starts.

Run (``runpy.run_path``) by the kernel's ``exec_lines`` before the submission's first cell, with
the policy in the environment variable ``COURSE_KERNEL_POLICY`` (JSON: ``deny`` and ``allow``
roots for reading, ``write`` roots). From then on the kernel cannot read the course's files (the
real gradebook, the solutions with their hidden tests, other students' submissions), write
outside its scratch directories, start processes, load native libraries or signal other
processes. The modules the tests need are imported first, while everything is still allowed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys


def _install() -> None:
    policy = json.loads(os.environ.pop("COURSE_KERNEL_POLICY", "{}"))
    for module in policy.get("preload", []):
        with contextlib.suppress(Exception):
            __import__(module)
    real = os.path.realpath
    deny = tuple(real(p) for p in policy.get("deny", []))
    allow = tuple(real(p) for p in policy.get("allow", []))
    write = tuple(real(p) for p in policy.get("write", []))
    devices = ("/dev/null", "/dev/urandom", "/dev/random", "/dev/tty")
    denied_events = (
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "subprocess.Popen",
        "pty.spawn",
        "ctypes.dlopen",
        "sqlite3.connect",
        "sys.addaudithook",
        "resource.setrlimit",
        "resource.prlimit",
    )
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    me = os.getpid()

    def inside(path: str, roots: tuple[str, ...]) -> bool:
        return any(path == r or path.startswith(r + os.sep) for r in roots)

    def refuse(event: str, detail: str) -> None:
        raise PermissionError(f"denied while grading: {event} {detail}"[:300])

    def hook(event: str, args: tuple) -> None:
        if event.startswith(denied_events):
            refuse(event, repr(args)[:200])
        elif event == "os.kill" or event == "os.killpg":
            if args and args[0] not in (me, 0):
                refuse(event, repr(args)[:200])
        elif event == "open" or event.startswith(("os.remove", "os.rename", "os.rmdir")):
            target = args[0] if args else None
            if isinstance(target, int) or target is None:
                return
            try:
                path = real(os.fspath(target))
            except Exception:
                return
            if isinstance(path, bytes):
                path = path.decode("utf-8", "replace")
            if path in devices:
                return
            if event == "open":
                mode = args[1] if len(args) > 1 else None
                flags = args[2] if len(args) > 2 else 0
                writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
                    isinstance(flags, int) and flags & write_flags
                )
            else:
                writing = True
            if writing and not inside(path, write):
                refuse(event, f"{path} (write)")
            if inside(path, deny) and not inside(path, allow):
                refuse(event, f"{path} (read)")
        elif event in ("os.listdir", "os.scandir"):
            target = args[0] if args and args[0] is not None else "."
            if isinstance(target, int):
                return
            path = real(os.fspath(target))
            if isinstance(path, str) and inside(path, deny) and not inside(path, allow):
                refuse(event, path)

    sys.addaudithook(hook)


_install()
