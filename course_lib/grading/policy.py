"""What a student's code may do at run time: one policy for the sandbox and nbgrader's kernel.

The operating system is the barrier (:mod:`course_lib.grading.isolation`: namespaces that show the
process only the interpreter and the libraries it needs, an unprivileged user, resource limits).
This module is the second layer, inside the process: an audit hook that refuses what a student's
function has no business doing and records each attempt as evidence for the report. The sandbox
child and the kernel hook load this file by its path (it imports the standard library only), so
both apply the same lists.

Paths are judged after every way of naming them is resolved: relative paths against the working
directory, ``dir_fd`` arguments (relative to a directory descriptor) are refused outright, and
``/proc`` paths that name other processes are refused.
"""

from __future__ import annotations

import os
import sys

__all__ = [
    "DENIED_EVENTS",
    "DEVICES",
    "READ_DIR_EVENTS",
    "WRITE_EVENTS",
    "AuditPolicy",
    "install_audit_hook",
]

#: Audit events never allowed (prefix match on the event name).
DENIED_EVENTS: tuple[str, ...] = (
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.startfile",
    "os.setuid",
    "os.setgid",
    "os.setreuid",
    "os.setregid",
    "os.chroot",
    "subprocess.Popen",
    "_posixsubprocess",
    "pty.spawn",
    "signal.pthread_kill",
    "socket.",
    "ctypes.",
    "sqlite3.",
    "sys.addaudithook",
    "sys.remote_exec",
    "sys._current_frames",
    "resource.setrlimit",
    "resource.prlimit",
    "webbrowser.open",
    "urllib.Request",
    "http.client.connect",
    "ftplib.",
    "smtplib.",
    "imaplib.",
    "poplib.",
    "telnetlib.",
    "nntplib.",
    "mmap.__new__",
)

#: Events that change a file or its metadata: allowed only inside the writable folders.
WRITE_EVENTS: tuple[str, ...] = (
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.chflags",
    "os.lchflags",
    "os.symlink",
    "os.link",
    "os.truncate",
    "os.utime",
    "os.setxattr",
    "os.removexattr",
    "shutil.",
)

#: Events that list or change to a folder: allowed inside the readable and writable folders.
READ_DIR_EVENTS: tuple[str, ...] = ("os.listdir", "os.scandir", "os.chdir", "os.listxattr")

#: Device files any process may open.
DEVICES: tuple[str, ...] = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")

# Where the audit events of the os module carry paths and directory descriptors.
_PATHS_AT: dict[str, tuple[int, ...]] = {
    "os.rename": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (1,),
}
_WRITTEN_AT: dict[str, tuple[int, ...]] = {"os.rename": (0, 1), "os.link": (1,), "os.symlink": (1,)}
_DIR_FD_AT: dict[str, tuple[int, ...]] = {
    "os.remove": (1,),
    "os.rmdir": (1,),
    "os.rename": (2, 3),
    "os.mkdir": (2,),
    "os.chmod": (2,),
    "os.chown": (3,),
    "os.link": (2, 3),
    "os.symlink": (2,),
    "os.utime": (3,),
}

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class AuditPolicy:
    """Which folders a process may read and write; :meth:`check` judges one audit event.

    ``readable`` and ``writable`` are folders (anything below them counts); a process may signal
    only itself; ``unix_sockets`` allows local sockets (a notebook kernel's event loop needs them;
    its container has no network).
    """

    def __init__(
        self,
        readable: list[str],
        writable: list[str],
        *,
        workdir: str | None = None,
        own_pid: int | None = None,
        unix_sockets: bool = False,
    ) -> None:
        real = os.path.realpath
        self.workdir = real(workdir or os.getcwd())
        self.writable = tuple(real(p) for p in writable if p)
        self.unix_sockets = unix_sockets
        self.pid = os.getpid() if own_pid is None else own_pid
        own = (f"/proc/{self.pid}", "/dev/fd", "/dev/shm")
        self.readable = tuple(real(p) for p in readable if p) + self.writable + own

    # -- paths ---------------------------------------------------------------------------------

    @staticmethod
    def _inside(path: str, roots: tuple[str, ...]) -> bool:
        return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)

    def resolve(self, target: object) -> str | None:
        """The absolute real path of a path argument; None for a file descriptor."""
        if isinstance(target, int) or target is None:
            return None
        try:
            text = os.fspath(target)  # type: ignore[arg-type]
        except TypeError:
            return "<not a path>"
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        try:
            path = os.path.realpath(os.path.join(self.workdir, text))
        except (OSError, ValueError):
            return "<unresolvable>"
        return path

    @staticmethod
    def _unix_socket(event: str, args: tuple) -> bool:
        """A local (AF_UNIX) socket: a kernel's own event loop and its channels use them."""
        import socket

        if event == "socket.__new__":
            return len(args) > 1 and args[1] == socket.AF_UNIX
        if event == "socket.gethostname":
            return True
        return bool(args) and getattr(args[0], "family", None) == socket.AF_UNIX

    def _proc_other(self, path: str) -> bool:
        """Whether ``path`` is below /proc/<pid> of another process (or /proc/<tid>)."""
        if not path.startswith("/proc/"):
            return False
        first = path[len("/proc/") :].split(os.sep, 1)[0]
        return first.isdigit() and int(first) != self.pid

    # -- the judgement -------------------------------------------------------------------------

    def check(self, event: str, args: tuple) -> str | None:
        """None when the event is allowed, else why it is refused (a short text)."""
        if self.unix_sockets and event.startswith("socket.") and self._unix_socket(event, args):
            return None
        if event.startswith(DENIED_EVENTS):
            return repr(args)[:300]
        if event in ("os.kill", "os.killpg"):
            if args and args[0] not in (self.pid, 0):
                return repr(args)[:300]
            return None
        if event == "open":
            path = self.resolve(args[0] if args else None)
            mode = args[1] if len(args) > 1 else None
            flags = args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if path is None:
                return None
            if mode is None and not os.path.isabs(os.fsdecode(args[0])):
                # os.open: a relative path may be relative to a directory descriptor (dir_fd),
                # which the event does not show
                return f"{args[0]!r} (a relative path given to os.open)"
            if path in DEVICES:
                return None
            if self._proc_other(path):
                return f"{path} (another process)"
            if writing:
                return None if self._inside(path, self.writable) else f"{path} (write)"
            return None if self._inside(path, self.readable) else f"{path} (read)"
        if event.startswith("shutil."):
            for index, arg in enumerate(args):
                path = self.resolve(arg) if isinstance(arg, str | bytes | os.PathLike) else None
                if path is None:
                    continue
                source = index == 0 and event.startswith(("shutil.copy", "shutil.unpack"))
                roots = self.readable if source else self.writable
                if self._proc_other(path) or not self._inside(path, roots):
                    return str(path)
            return None
        if event.startswith(WRITE_EVENTS) or event in READ_DIR_EVENTS:
            for index in _DIR_FD_AT.get(event, ()):
                if index < len(args) and args[index] is not None:
                    return f"a path relative to a directory descriptor ({args[index]!r})"
            writing = event.startswith(WRITE_EVENTS)
            for index in _PATHS_AT.get(event, (0,)):
                if index >= len(args):
                    continue
                target = args[index]
                if target is None and event in READ_DIR_EVENTS:
                    target = "."
                path = self.resolve(target)
                if path is None:
                    continue  # a file descriptor the process opened itself
                roots = (
                    self.writable
                    if writing and index in _WRITTEN_AT.get(event, (0,))
                    else (self.readable)
                )
                if self._proc_other(path) or not self._inside(path, roots):
                    return str(path)
            return None
        return None


def install_audit_hook(
    policy: AuditPolicy, denials: list[tuple[str, str]], *, limit: int = 200
) -> None:
    """From now on, refuse (PermissionError) and record what ``policy`` does not allow."""
    check = policy.check

    def hook(event: str, args: tuple) -> None:
        reason = check(event, args)
        if reason is not None:
            if len(denials) < limit:
                denials.append((event, reason[:300]))
            raise PermissionError(f"denied by the grader's sandbox: {event} {reason[:200]}")

    sys.addaudithook(hook)
