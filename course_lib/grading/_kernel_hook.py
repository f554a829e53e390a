"""Audit hook installed in the kernel that ``nbgrader autograde`` starts (the second layer).

Run (``runpy.run_path``) by the kernel's ``exec_lines`` before the submission's first cell,
inside the container that :mod:`course_lib.grading.submission` starts the kernel in. It reads the
policy that the grader wrote next to it (``/sandbox/lib/kernel_policy.json``: the folders the
kernel may read and write, all of them paths inside the container), imports the modules the
hidden tests need while everything is still allowed, and installs the audit hook of
``policy.py``, the same one the verification sandbox uses.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys


def _install() -> None:
    with open("/sandbox/lib/kernel_policy.json") as f:
        settings = json.load(f)
    for module in settings.get("preload", []):
        with contextlib.suppress(Exception):
            __import__(module)
    spec = importlib.util.spec_from_file_location("course_policy", "/sandbox/lib/policy.py")
    policy = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["course_policy"] = policy
    spec.loader.exec_module(policy)  # type: ignore[union-attr]
    denials: list[tuple[str, str]] = []
    rules = policy.AuditPolicy(settings["readable"], settings["writable"], unix_sockets=True)
    policy.install_audit_hook(rules, denials)


_install()
