"""Start the notebook kernel that ``nbgrader autograde`` runs a submission in, inside the container.

The course's kernel spec (written per submission by :mod:`course_lib.grading.submission`) runs
``bwrap ... python -I /sandbox/lib/_kernel_launch.py CONNECTION_FILE``. In the container, the
launcher reads the connection file (written by the grader for root only), drops root to the user
the grader names, sets the kernel's memory limit, copies the connection details where the
unprivileged kernel can read them, and replaces itself with the IPython kernel, whose first lines
install the audit hook of :mod:`policy` (``_kernel_hook.py``).

The kernel talks to nbgrader over Unix sockets in the submission's runtime folder (the network
namespace has no network), sees the interpreter, the course's Python environment and the one
folder of the submission it runs, and nothing else of the machine.
"""

from __future__ import annotations

import json
import os
import resource
import sys


def main() -> None:
    connection_file = sys.argv[1]
    with open(connection_file) as f:
        connection = json.load(f)
    drop = os.environ.pop("COURSE_SANDBOX_DROP", "")
    if drop:
        uid, gid = (int(n) for n in drop.split(":"))
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise SystemExit("the kernel could not drop its privileges")
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("CapEff:", "CapPrm:")) and int(line.split()[1], 16):
                    raise SystemExit("the kernel still holds capabilities after dropping root")
    memory = int(os.environ.pop("COURSE_KERNEL_MEMORY", "0"))
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    readable_copy = "/tmp/kernel-connection.json"
    with open(readable_copy, "w") as f:
        json.dump(connection, f)
    hook = "/sandbox/lib/_kernel_hook.py"
    exec_lines = [f"import runpy; runpy.run_path({hook!r}, run_name='_course_hook')"]
    os.execv(
        sys.executable,
        [
            sys.executable,
            "-I",
            "-m",
            "ipykernel_launcher",
            "-f",
            readable_copy,
            "--HistoryManager.hist_file=:memory:",
            "--IPKernelApp.exec_lines=" + json.dumps(exec_lines),
        ],
    )


if __name__ == "__main__":
    main()
