"""JupyterHub configuration for a class taking the CNN course, with nbgrader's exchange.

One machine, real unix accounts: students and instructors log in with their system password
(PAM, JupyterHub's default authenticator) and each gets a JupyterLab server running as their own
user (LocalProcessSpawner), with the course's Python environment as the kernel. Start it as root
from this folder, after ``npm ci`` here (it installs the HTTP proxy into node_modules/)::

    jupyterhub -f deploy/jupyterhub/jupyterhub_config.py

What a deployment sets, as environment variables of the hub (defaults in brackets):

    COURSE_ID           nbgrader's course id, the same as in the course's nbgrader_config.py
                        [cnn-course]
    COURSE_ROSTER       CSV with the columns id and role (instructor or student); further
                        columns (first_name, last_name, email, lms_user_id) are for
                        ``nbgrader db student import`` [/srv/jupyterhub/roster.csv]
    COURSE_EXCHANGE     nbgrader's exchange, one folder every user can reach
                        [/srv/nbgrader/exchange, nbgrader's default]
    COURSE_DIR          the instructors' course folder, a clone of the course's repository
                        in their home (``~`` is their home) [~/cnn-course]
    COURSE_ENV          the Python environment of the course: users' servers and kernels run
                        from it [the environment that runs the hub]
    COURSE_HUB_STATE    where the hub keeps its database, cookie secret and proxy pid
                        [/srv/jupyterhub]
    COURSE_HUB_BIND_URL the public address of the proxy [http://:8000]; put TLS in front
                        of it (or set JupyterHub.ssl_cert / ssl_key) for a real class

The roster makes two JupyterHub groups, named the way nbgrader's JupyterHubAuthPlugin expects
them: ``formgrade-<course id>`` (instructors: formgrader, course list, create assignment) and
``nbgrader-<course id>`` (students: assignment list and validate only). Which nbgrader extensions
a server loads is set by the folders under ``jupyter/`` beside this file, put on the server's
JUPYTER_CONFIG_PATH by group.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

HERE = Path(__file__).resolve().parent
COURSE_ID = os.environ.get("COURSE_ID", "cnn-course")
ROSTER = Path(os.environ.get("COURSE_ROSTER", "/srv/jupyterhub/roster.csv"))
EXCHANGE = Path(os.environ.get("COURSE_EXCHANGE", "/srv/nbgrader/exchange"))
COURSE_DIR = os.environ.get("COURSE_DIR", "~/cnn-course")
COURSE_ENV = Path(os.environ.get("COURSE_ENV", sys.prefix))
STATE = Path(os.environ.get("COURSE_HUB_STATE", "/srv/jupyterhub"))
BIND_URL = os.environ.get("COURSE_HUB_BIND_URL", "http://:8000")

INSTRUCTORS = f"formgrade-{COURSE_ID}"
STUDENTS = f"nbgrader-{COURSE_ID}"
ROLES = {"instructor": INSTRUCTORS, "student": STUDENTS}


def read_roster(path: Path) -> dict[str, list[str]]:
    """group name -> user names, from a CSV with the columns ``id`` and ``role``."""
    if not path.is_file():
        raise SystemExit(
            f"course roster {path} not found: write a CSV with the columns id,role "
            "(role: instructor or student) and point COURSE_ROSTER at it"
        )
    groups: dict[str, list[str]] = {group: [] for group in ROLES.values()}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"id", "role"} - set(reader.fieldnames or ())
        if missing:
            raise SystemExit(
                f"course roster {path}: expected the columns id and role, "
                f"missing {', '.join(sorted(missing))}"
            )
        for line, row in enumerate(reader, start=2):
            name, role = (row["id"] or "").strip(), (row["role"] or "").strip().lower()
            if not name:
                continue
            if role not in ROLES:
                raise SystemExit(
                    f"course roster {path}, line {line}: role {role!r} for {name!r}; "
                    "expected instructor or student"
                )
            if "+" in name or "*" in name:
                raise SystemExit(
                    f"course roster {path}, line {line}: {name!r} cannot be an nbgrader "
                    "student id (no '+' or '*')"
                )
            groups[ROLES[role]].append(name)
    return groups


groups = read_roster(ROSTER)

# -- the hub -----------------------------------------------------------------------------------
STATE.mkdir(parents=True, exist_ok=True)
c.JupyterHub.bind_url = BIND_URL
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")

# configurable-http-proxy, installed by `npm ci` in this folder (scripts/setup.sh does it)
local_proxy = HERE / "node_modules" / ".bin" / "configurable-http-proxy"
if local_proxy.exists():
    c.ConfigurableHTTPProxy.command = [str(local_proxy)]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")

# -- who may log in, and the two groups --------------------------------------------------------
c.Authenticator.allowed_users = {name for names in groups.values() for name in names}
c.JupyterHub.load_groups = {group: {"users": names} for group, names in groups.items()}

# -- the users' servers ------------------------------------------------------------------------
# JupyterLab from the course environment: its Python is the kernel (see jupyter/common/).
c.Spawner.cmd = [str(COURSE_ENV / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.environment = {
    # the course's commands (course, nbgrader) first in terminals and in `!` cells
    "PATH": os.pathsep.join([str(COURSE_ENV / "bin"), "/usr/local/bin", "/usr/bin", "/bin"]),
    "COURSE_ID": COURSE_ID,
    "COURSE_EXCHANGE": str(EXCHANGE),
    # students: nbgrader's assignment list and validate, no formgrader
    "JUPYTER_CONFIG_PATH": os.pathsep.join(
        [str(HERE / "jupyter" / "students"), str(HERE / "jupyter" / "common")]
    ),
}
c.Spawner.group_overrides = {
    "01-instructors": {
        "groups": [INSTRUCTORS],
        "spawner_override": {
            "environment": {
                "COURSE_DIR": COURSE_DIR,
                "JUPYTER_CONFIG_PATH": os.pathsep.join(
                    [str(HERE / "jupyter" / "instructors"), str(HERE / "jupyter" / "common")]
                ),
            }
        },
    }
}
# A kernel that grades nothing still needs room for PyTorch; LocalProcessSpawner cannot enforce
# these (jupyterhub-systemdspawner and KubeSpawner do), but they document the need.
c.Spawner.mem_limit = "4G"
c.Spawner.cpu_limit = 2.0
# PyTorch and JupyterLab take a while to import on a busy machine
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120

# -- nbgrader's exchange -----------------------------------------------------------------------
# Every user writes into it (students submit into <exchange>/<course>/inbound, which only the
# instructor can list), so the folder itself is world-writable, as nbgrader asks.
if not EXCHANGE.exists():
    EXCHANGE.mkdir(parents=True)
    EXCHANGE.chmod(0o777)
