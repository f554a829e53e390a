"""The operating system as the barrier around a student's code.

Every process that runs student code while grading (the verification sandbox and the kernel that
``nbgrader autograde`` starts) runs inside a bubblewrap (``bwrap``) container:

- its own mount namespace, whose root holds only what the process needs, read-only: the system's
  shared libraries, the Python interpreter and its standard library, and the Python packages it
  is allowed (for the NumPy exercises: NumPy alone, so SciPy, PyTorch and course_lib are simply
  not there to import); site-packages folders of the interpreter are hidden. It never sees the
  course folder, the gradebook, the solutions, other submissions or the grader's files;
- its own pid namespace (it sees and can signal only its own processes), network namespace (no
  network, not even the host's loopback), IPC and UTS namespaces;
- an unprivileged user: run as root, the container starts with only the capability to change
  user and the child drops to ``nobody`` before it reads anything of the job; the child checks that
  it has no capability left and says so, and the grader refuses a child that did not drop. Run as
  an ordinary user, the namespaces are made with an unprivileged user namespace, and the process
  keeps that ordinary user's identity (it cannot become anyone else);
- resource limits (memory, CPU time, file size, processes) set by the child, and a wall clock
  kept by the grader.

When bubblewrap is missing or cannot make namespaces, grading stops with :class:`IsolationError`,
which says what to install or enable; it never falls back to running student code without the
barrier.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import pwd
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "IsolationError",
    "Mount",
    "View",
    "bwrap_command",
    "check_isolation",
    "distribution_entries",
    "drop_target",
    "python_view",
]

#: Where the view puts the allowed Python packages, the grader's helper files and the work folder.
SITE = "/sandbox/site"
LIB = "/sandbox/lib"
WORK = "/sandbox/work"

_FIX = (
    "The grader runs student code only inside a bubblewrap container. Install it "
    "(Debian/Ubuntu: `sudo apt-get install bubblewrap`; the course's scripts/setup.sh does this "
    "when run as root) and, when grading as an ordinary user, allow unprivileged user namespaces "
    "(`sudo sysctl kernel.unprivileged_userns_clone=1` on Debian, or "
    "`kernel.apparmor_restrict_unprivileged_userns=0` on Ubuntu 24.04). In a container, run it "
    "with the rights to create namespaces (e.g. docker run --privileged, or a seccomp profile "
    "that allows unshare)."
)


class IsolationError(RuntimeError):
    """Student code cannot be isolated on this machine; the message says how to fix that."""


@dataclass(frozen=True)
class Mount:
    """One entry of a view: ``kind`` is ro (read-only bind), rw, tmpfs, symlink, dir."""

    kind: str
    source: str
    target: str = ""

    def args(self) -> list[str]:
        if self.kind == "ro":
            return ["--ro-bind", self.source, self.target or self.source]
        if self.kind == "rw":
            return ["--bind", self.source, self.target or self.source]
        if self.kind == "tmpfs":
            return ["--perms", "01777", "--tmpfs", self.source]
        if self.kind == "symlink":
            return ["--symlink", self.source, self.target]
        if self.kind == "dir":
            return ["--dir", self.source]
        raise ValueError(f"unknown mount kind {self.kind!r}")


@dataclass
class View:
    """What the container shows: mounts in order (later ones cover earlier ones)."""

    mounts: list[Mount] = field(default_factory=list)

    def ro(self, source: str | Path, target: str | Path | None = None) -> View:
        self.mounts.append(Mount("ro", str(source), str(target or source)))
        return self

    def rw(self, source: str | Path, target: str | Path | None = None) -> View:
        self.mounts.append(Mount("rw", str(source), str(target or source)))
        return self

    def tmpfs(self, target: str | Path) -> View:
        self.mounts.append(Mount("tmpfs", str(target)))
        return self

    def args(self) -> list[str]:
        # the folders above each mount point, made traversable (bubblewrap would otherwise make
        # them with the mode of this machine's folders: /root is 0700)
        bound = self.targets()
        folders: set[str] = set()
        for target in bound:
            parent = Path(target).parent
            while str(parent) != "/":
                inside = any(
                    str(parent) == b or str(parent).startswith(b.rstrip("/") + "/")
                    for b in bound
                    if b != target
                )
                if inside:
                    break
                folders.add(str(parent))
                parent = parent.parent
        links = {m.target for m in self.mounts if m.kind == "symlink"}
        made = []
        for folder in sorted(folders, key=lambda f: (f.count("/"), f)):
            if folder not in links:
                made += ["--perms", "0755", "--dir", folder]
        return made + [arg for mount in self.mounts for arg in mount.args()]

    def targets(self) -> list[str]:
        return [m.target or m.source for m in self.mounts if m.kind in ("ro", "rw", "tmpfs")]


# -- what a Python process needs ----------------------------------------------------------------


def _system_libraries(view: View) -> None:
    """The shared libraries of the system, the way this machine lays them out."""
    for name in ("/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32"):
        if os.path.isdir(name) and not os.path.islink(name):
            view.ro(name)
    for name in ("/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(name):
            view.mounts.append(Mount("symlink", os.readlink(name), name))
        elif os.path.isdir(name):
            view.ro(name)
    if os.path.isfile("/etc/ld.so.cache"):
        view.ro("/etc/ld.so.cache")


def interpreter() -> str:
    """The real path of the base interpreter (a virtual environment's python is a link to it)."""
    base = Path(sys.base_prefix)
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (base / "bin" / name, Path(os.path.realpath(sys.executable))):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate.resolve())
    raise IsolationError(f"cannot find the base Python interpreter under {base}")


def _site_folders() -> set[str]:
    """Folders where the base interpreter and the system keep installed packages."""
    folders = set()
    for key in ("purelib", "platlib"):
        paths = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})
        folders.add(paths[key])
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for prefix in ("/usr/lib", "/usr/local/lib", "/usr/lib64"):
        for sub in (
            "python3/dist-packages",
            f"{version}/dist-packages",
            f"{version}/site-packages",
        ):
            folders.add(f"{prefix}/{sub}")
    return {os.path.realpath(f) for f in folders if os.path.isdir(f)}


def _under_bound(path: str, view: View) -> bool:
    return any(path == t or path.startswith(t.rstrip("/") + "/") for t in view.targets())


def _requirement_names(requires: list[str] | None) -> list[str]:
    names = []
    for requirement in requires or []:
        if "extra ==" in requirement:
            continue
        match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
        if match:
            names.append(match.group(0))
    return names


@functools.cache
def distribution_entries(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(path on this machine, name in the sandbox's site folder) of the top-level files and
    folders of the distributions ``names`` and everything they require."""
    seen: dict[str, importlib.metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            if name in names:
                message = f"the package {name!r} the sandbox needs is not installed"
                raise IsolationError(message) from None
            continue
        key = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
        if key in seen:
            continue
        seen[key] = dist
        todo += _requirement_names(dist.requires)
    entries: dict[str, str] = {}
    for dist in seen.values():
        for file in dist.files or []:
            top = file.parts[0] if file.parts else ""
            if not top or top in ("..", "__pycache__") or top.endswith(".pth"):
                continue
            located = Path(dist.locate_file(top))
            if located.exists():
                entries[top] = str(located.resolve())
    return tuple(sorted((path, top) for top, path in entries.items()))


def python_view(packages: tuple[str, ...], files: dict[str, str | Path] | None = None) -> View:
    """A view with the interpreter, its standard library, the distributions ``packages`` (and
    their requirements) in ``/sandbox/site`` and ``files`` (name -> path) in ``/sandbox/lib``."""
    view = View()
    _system_libraries(view)
    exe = interpreter()
    if not _under_bound(exe, view):
        view.ro(exe)
    base_paths = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})
    stdlib = {os.path.realpath(base_paths[k]) for k in ("stdlib", "platstdlib")}
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir and os.path.isdir(libdir) and not _under_bound(os.path.realpath(libdir), view):
        for entry in os.listdir(libdir):
            if entry.startswith("libpython"):
                view.ro(os.path.join(os.path.realpath(libdir), entry))
    for folder in sorted(stdlib):
        if not _under_bound(folder, view):
            view.ro(folder)
    for folder in sorted(_site_folders()):
        if _under_bound(folder, view):
            view.tmpfs(folder)
    for path, name in distribution_entries(tuple(packages)):
        view.ro(path, f"{SITE}/{name}")
    for name, path in (files or {}).items():
        view.ro(os.path.realpath(path), f"{LIB}/{name}")
    return view


# -- the container -----------------------------------------------------------------------------


def drop_target() -> tuple[int, int] | None:
    """(uid, gid) the child must drop to: ``nobody`` when grading as root, else None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


def bwrap_command(
    argv: list[str],
    view: View,
    *,
    chdir: str = WORK,
    env: dict[str, str] | None = None,
    extra: list[str] | None = None,
) -> list[str]:
    """The command line that runs ``argv`` inside a container showing ``view``."""
    bwrap = _bwrap()
    command = [bwrap, "--die-with-parent", "--new-session"]
    command += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    command += ["--unshare-cgroup-try"]
    if os.geteuid() == 0:
        # no user namespace: the child drops to nobody itself, with only these capabilities
        command += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        command += ["--unshare-user"]
    # the standard folders first: the view may bind folders that lie below /tmp on this machine
    command += ["--proc", "/proc", "--dev", "/dev"]
    command += ["--perms", "01777", "--tmpfs", "/tmp"]
    command += view.args()
    if chdir == WORK and WORK not in view.targets():
        command += ["--perms", "01777", "--tmpfs", WORK]
    command += ["--chdir", chdir, "--clearenv"]
    for key, value in (env or {}).items():
        command += ["--setenv", key, value]
    command += extra or []
    return [*command, "--", *argv]


def _bwrap() -> str:
    found = shutil.which("bwrap") or ("/usr/bin/bwrap" if os.path.exists("/usr/bin/bwrap") else "")
    if not found:
        raise IsolationError("bubblewrap (bwrap) is not installed. " + _FIX)
    return found


@functools.cache
def check_isolation() -> str:
    """Make sure containers work here (once per process); return a one-line description.

    Raises :class:`IsolationError` with what to do when they don't.
    """
    command = bwrap_command(
        [interpreter(), "-I", "-S", "-c", "import os; print(os.getpid())"],
        python_view(()),
    )
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise IsolationError(f"bubblewrap could not start a container ({error}). " + _FIX) from None
    if done.returncode != 0 or done.stdout.strip() not in ("1", "2", "3"):
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise IsolationError(
            f"bubblewrap could not start a container: {detail[0]}. " + _FIX
        ) from None
    who = "drops to nobody" if os.geteuid() == 0 else "runs as this user in a user namespace"
    return f"bubblewrap containers (mount, pid, network, IPC namespaces); student code {who}"
