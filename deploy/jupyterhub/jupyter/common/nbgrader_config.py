"""nbgrader settings every user's server shares: the course id and the exchange.

The hub puts this folder on each server's JUPYTER_CONFIG_PATH and sets COURSE_ID and
COURSE_EXCHANGE (see ../../jupyterhub_config.py).
"""

import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = os.environ.get("COURSE_ID", "cnn-course")
c.Exchange.root = os.environ.get("COURSE_EXCHANGE", "/srv/nbgrader/exchange")
