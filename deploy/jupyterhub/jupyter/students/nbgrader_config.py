"""nbgrader settings of a student's server: the student id is the JupyterHub user name.

nbgrader names a submission after the unix account of the process, which is the hub's user name
only where every student has an account of that name (PAM with LocalProcessSpawner). Spawners
that run servers under another account (systemdspawner's dynamic users, SimpleLocalProcessSpawner,
containers with a fixed user) would submit every student under one name; this keeps the hub's.
Instructors do not get it: for them, nbgrader's student id selects whose work a command handles.
"""

import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

if os.environ.get("JUPYTERHUB_USER"):
    c.CourseDirectory.student_id = os.environ["JUPYTERHUB_USER"]
