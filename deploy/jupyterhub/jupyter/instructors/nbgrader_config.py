"""nbgrader settings of an instructor's server: the course folder's own nbgrader_config.py.

The formgrader reads nbgrader's configuration from the Jupyter config path, not from the course
folder; this loads the course's file (COURSE_DIR, set by the hub; ``~`` is the instructor's
home), so the formgrader, the terminal and the ``course`` command all see the same course. The
folder must lie inside the server's root (the home), or the formgrader refuses it.
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

course = Path(os.environ.get("COURSE_DIR", "~/cnn-course")).expanduser()
if (course / "nbgrader_config.py").is_file():
    load_subconfig(str(course / "nbgrader_config.py"))  # noqa: F821 - provided by traitlets
