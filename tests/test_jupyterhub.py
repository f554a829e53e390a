"""A class on a real JupyterHub: nbgrader's exchange from release to feedback, on loopback.

The hub runs ``deploy/jupyterhub/jupyterhub_config.py`` as a course deploys it: its groups, its
nbgrader extensions by group, the course environment as the kernel, configurable-http-proxy from
``deploy/jupyterhub/node_modules`` and nbgrader's exchange in a shared folder. On top of it the
test sets only what a test must own: free ports on 127.0.0.1, its folders, an API token, a shared
password instead of PAM, and JupyterHub's SimpleLocalProcessSpawner instead of unix accounts
(each user is a JupyterHub user with their own home, ``USER`` and server process, but the
processes share the test's unix user: the course environment may sit where no other account can
run it, and a test must not create accounts on the machine; the README says what a class uses).

Everything goes through the servers: the hub's REST API starts the users' servers; students
fetch, validate, answer and submit with nbgrader's assignment-list and validate extensions (the
requests JupyterLab's Assignments panel sends); the instructor types ``nbgrader`` and ``course``
commands into a terminal of their own server; the formgrader is driven in Chromium. The tests of
this module are the steps of one term, in order; each needs the ones before it.

The last steps check where the course's tools meet nbgrader's: feedback released through the
exchange, a manual score shown in the feedback, and the formgrader's Autograde button, which
refuses and names the command that grades isolated.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from grading_fixtures.students import FLIPPED_CORR2D, solution_answers

from course_lib.grading.feedback import hidden_test_lines

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "jupyterhub"
PROXY = DEPLOY / "node_modules" / ".bin" / "configurable-http-proxy"
COURSE_ID = "cnn-course"
ASSIGNMENT = "convolution"
PASSWORD = "course-hub-test-" + secrets.token_hex(8)
INSTRUCTOR = "instructor"
CORRECT, BUGGY, EMPTY = "alice", "carol", "grace"
STUDENTS = (CORRECT, BUGGY, EMPTY)
EXPECTED_SCORES = {CORRECT: 20.0, BUGGY: 17.0, EMPTY: 0.0}  # carol's kernel is flipped
MANUAL_POINTS = 1.0  # what the instructor gives carol's test_corr2d by hand in the formgrader


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _process_tree(root: int) -> set[int]:
    """``root`` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo += children.get(pid, [])
    return tree


def _listening_addresses(pids: set[int]) -> set[str]:
    """``ip:port`` of every TCP socket the processes listen on."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            # the kernel writes each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(f"{socket.inet_ntop(family, raw)}:{int(port, 16)}")
    return found


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0]
    return host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1")


# -- talking to the hub and the users' servers ---------------------------------------------------


@dataclass
class Server:
    """A user's single-user server behind the hub's proxy, with that user's API token."""

    hub: Hub
    name: str
    token: str
    home: Path

    def url(self, path: str) -> str:
        return f"{self.hub.url}/user/{self.name}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs):
        import requests

        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        response = requests.request(
            method, self.url(path), headers=headers, timeout=kwargs.pop("timeout", 300), **kwargs
        )
        assert response.status_code < 400, (
            f"{method} {path} as {self.name}: {response.status_code} {response.text[:2000]}"
        )
        return response

    def json(self, method: str, path: str, **kwargs):
        return self.request(method, path, **kwargs).json()

    def read(self, path: str) -> str:
        """A text file of this user's, read through the server's contents API."""
        model = self.json("GET", f"api/contents/{path}", params={"type": "file", "format": "text"})
        return model["content"]

    def shell(self, command: str, timeout: float = 600) -> tuple[int, str]:
        """Type ``command`` into a terminal of this server (as this user, in their home).

        Returns the exit status and what the command printed (kept in a log file of the user's
        and read back through the contents API, free of the terminal's control characters).
        """
        import websocket

        log = f"course-test-logs/{uuid.uuid4().hex}.log"
        terminal = self.json("POST", "api/terminals")["name"]
        ws_url = self.url(f"terminals/websocket/{terminal}").replace("http://", "ws://", 1)
        ws = websocket.create_connection(
            ws_url, header=[f"Authorization: token {self.token}"], timeout=timeout
        )
        try:
            # the typed line echoes "$((0+$?))"; only the command's own output has the digits
            line = f"mkdir -p course-test-logs; ({command}) > {log} 2>&1; echo @@rc=$((0+$?))@@"
            ws.send(json.dumps(["stdin", line + "\r"]))
            seen = ""
            deadline = time.monotonic() + timeout
            while (found := re.search(r"@@rc=(\d+)@@", seen)) is None:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{command!r} as {self.name} did not finish: {seen[-2000:]}"
                    )
                message = json.loads(ws.recv())
                if message[0] == "stdout":
                    seen += message[1]
        finally:
            ws.close()
            self.request("DELETE", f"api/terminals/{terminal}")
        return int(found.group(1)), self.read(log)

    def run(self, command: str, timeout: float = 600) -> str:
        """:meth:`shell` that must succeed; returns the output."""
        rc, output = self.shell(command, timeout)
        assert rc == 0, f"{command!r} as {self.name} exited with {rc}:\n{output[-4000:]}"
        return output

    def assignments(self) -> list[dict]:
        """nbgrader's assignment list, as the Assignments panel asks for it."""
        reply = self.json("GET", "assignments", params={"course_id": COURSE_ID})
        assert reply["success"], reply["value"]
        return [a for a in reply["value"] if a["assignment_id"] == ASSIGNMENT]

    def assignment_action(self, action: str) -> list[dict]:
        body = {"course_id": COURSE_ID, "assignment_id": ASSIGNMENT}
        reply = self.json("POST", f"assignments/{action}", json=body)
        assert reply.get("success", True), reply.get("value")
        return [a for a in reply["value"] if a["assignment_id"] == ASSIGNMENT]


@dataclass
class Hub:
    url: str
    token: str  # the test's service token
    ports: list[int]
    course: Path  # the instructor's course folder
    exchange: Path
    roster: Path
    pid: int  # the hub's process; the proxy, the servers and their kernels descend from it
    servers: dict[str, Server] = field(default_factory=dict)

    def api(self, method: str, path: str, **kwargs):
        import requests

        response = requests.request(
            method,
            f"{self.url}/hub/api/{path.lstrip('/')}",
            headers={"Authorization": f"token {self.token}"},
            timeout=60,
            **kwargs,
        )
        assert response.status_code < 400, f"{method} {path}: {response.text[:2000]}"
        return response.json() if response.content else None

    @property
    def instructor(self) -> Server:
        return self.servers[INSTRUCTOR]


def _wait_for(predicate, timeout: float, what: str, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = log.read_text()[-4000:] if log and log.exists() else ""
            pytest.fail(f"{what} within {timeout:.0f} s\n{tail}")
        time.sleep(0.5)


def _start_servers(hub: Hub, log: Path) -> None:
    """Start every user's server through the hub's REST API, all at once."""
    for name in (INSTRUCTOR, *STUDENTS):
        hub.api("POST", f"users/{name}/server")

    def all_ready() -> bool:
        users = {u["name"]: u for u in hub.api("GET", "users")}
        return all(users[n]["servers"].get("", {}).get("ready") for n in hub.servers)

    _wait_for(all_ready, 300, "the users' servers did not start", log)


HUB_OVERLAY = """\
# The course's hub configuration, with what the test owns on top of it.
c = get_config()  # noqa: F821
load_subconfig({deploy!r})  # noqa: F821
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {password!r}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {homes!r} + "/{{username}}"
c.Spawner.args = ["--allow-root"]  # where the test runs as root
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.JupyterHub.services = [{{"name": "course-test", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [
    {{
        "name": "course-test",
        "scopes": [
            "admin:users", "admin:servers", "tokens", "list:groups", "read:groups",
            "access:servers",
        ],
        "services": ["course-test"],
    }}
]
"""


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    """The course's JupyterHub on 127.0.0.1 with its four users' servers running."""
    if sys.platform != "linux":
        pytest.skip("the hub's local spawner runs on Linux here")
    if shutil.which("node") is None or not PROXY.exists():
        pytest.skip("configurable-http-proxy is not installed: run scripts/setup.sh test")

    base = Path(tempfile.mkdtemp(prefix="course-hub-"))
    homes, exchange, state = base / "home", base / "exchange", base / "state"
    homes.mkdir()
    state.mkdir()
    process = None
    log_file = None
    log = state / "jupyterhub.log"
    tree: set[int] = set()
    ports: list[int] = []
    try:
        # the instructor's course folder: a copy of the course's nbgrader source in their home
        course = homes / INSTRUCTOR / "cnn-course"
        course.mkdir(parents=True)
        shutil.copy(ROOT / "nbgrader_config.py", course)
        shutil.copytree(ROOT / "solutions", course / "solutions")
        roster = state / "roster.csv"
        roster.write_text(
            "id,role,first_name,last_name\n"
            f"{INSTRUCTOR},instructor,Ada,Lovelace\n"
            + "".join(f"{name},student,{name.title()},Student\n" for name in STUDENTS)
        )
        ports = [_free_port(), _free_port(), _free_port()]
        port, hub_port, api_port = ports
        token = secrets.token_hex(32)
        overlay = state / "jupyterhub_test_config.py"
        overlay.write_text(
            HUB_OVERLAY.format(
                deploy=str(DEPLOY / "jupyterhub_config.py"),
                password=PASSWORD,
                homes=str(homes),
                hub_port=hub_port,
                api_port=api_port,
                token=token,
            )
        )
        env = {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
            "LANG": "C.UTF-8",
            "HOME": str(state),
            "COURSE_ID": COURSE_ID,
            "COURSE_ROSTER": str(roster),
            "COURSE_EXCHANGE": str(exchange),
            "COURSE_HUB_STATE": str(state),
            "COURSE_HUB_BIND_URL": f"http://127.0.0.1:{port}",
        }
        log_file = log.open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(overlay)],
            cwd=state, env=env, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        result = Hub(
            f"http://127.0.0.1:{port}", token, ports, course, exchange, roster, process.pid
        )

        def hub_answers() -> bool:
            if process.poll() is not None:
                pytest.fail(f"the hub exited with {process.returncode}:\n{log.read_text()[-4000:]}")
            try:
                result.api("GET", "")
                return True
            except Exception:
                return False

        _wait_for(hub_answers, 120, "the hub did not answer", log)
        for name in (INSTRUCTOR, *STUDENTS):
            user_token = result.api("POST", f"users/{name}/tokens", json={"note": "course test"})
            result.servers[name] = Server(result, name, user_token["token"], homes / name)
        _start_servers(result, log)
        yield result
        tree = _process_tree(process.pid)
        # stop the servers through the hub, as an admin would
        for name in result.servers:
            result.api("DELETE", f"users/{name}/server")
        _wait_for(
            lambda: all(
                not u["servers"] for u in result.api("GET", "users") if u["name"] in result.servers
            ),
            120,
            "the users' servers did not stop",
            log,
        )
    finally:
        if process is not None and process.poll() is None:
            tree |= _process_tree(process.pid)
            process.send_signal(signal.SIGTERM)  # the hub stops the proxy and any server left
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if log_file is not None:
            log_file.close()
        artifacts = ROOT / "artifacts" / "jupyterhub"
        artifacts.mkdir(parents=True, exist_ok=True)
        if log.exists():
            shutil.copy(log, artifacts / "jupyterhub.log")
        time.sleep(1.0)  # let the last servers' kernels exit
        left = sorted(pid for pid in tree if Path(f"/proc/{pid}").exists())
        for pid in left:  # a process the hub did not stop: end it, then fail below
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(base, ignore_errors=True)
    assert not left, f"processes of the hub still ran after it stopped: {left}"
    assert not [p for p in ports if _listening(p)], "a port of the hub is still open"


# -- the term, step by step ---------------------------------------------------------------------


def _latest_report(course: Path) -> dict:
    reports = sorted((course / "reports").glob(f"{ASSIGNMENT}-*.json"))
    assert reports, "course autograde wrote no report"
    return json.loads(reports[-1].read_text())


def _formgrader_submissions(hub: Hub) -> dict[str, dict]:
    """The gradebook as the formgrader's own API reports it, by student."""
    rows = hub.instructor.json("GET", f"formgrader/api/submissions/{ASSIGNMENT}")
    return {row["student"]: row for row in rows}


def test_hub_gives_each_group_its_extensions_and_the_course_kernel(hub: Hub) -> None:
    groups = {g["name"]: sorted(g["users"]) for g in hub.api("GET", "groups")}
    assert groups[f"formgrade-{COURSE_ID}"] == [INSTRUCTOR]
    assert groups[f"nbgrader-{COURSE_ID}"] == sorted(STUDENTS)

    instructor, student = hub.instructor, hub.servers[CORRECT]
    # each server is its user's: their name and their home
    for server in hub.servers.values():
        assert server.run('echo "$USER $HOME"').split() == [server.name, str(server.home)]
    # the formgrader is the instructors' only; the assignment list is everyone's
    assert instructor.request("GET", "formgrader/api/status").json() == {"status": True}
    import requests

    answer = requests.get(
        student.url("formgrader/api/status"),
        headers={"Authorization": f"token {student.token}"},
        timeout=60,
    )
    assert answer.status_code == 404, answer.text[:500]
    assert student.json("GET", "assignments", params={"course_id": COURSE_ID})["success"]
    # ...and so are the JupyterLab panels
    page_config = re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
        student.request("GET", "lab").text,
        re.S,
    )
    assert page_config is not None
    disabled = json.loads(page_config.group(1))["disabledExtensions"]
    assert {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment"} <= set(disabled)
    assert "@jupyter/nbgrader:assignment-list" not in disabled
    lab = re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
        instructor.request("GET", "lab").text,
        re.S,
    )
    assert lab is not None
    assert "@jupyter/nbgrader:formgrader" not in json.loads(lab.group(1))["disabledExtensions"]

    # the one kernel is the course's environment
    specs = student.json("GET", "api/kernelspecs")
    assert set(specs["kernelspecs"]) == {"python3"}
    argv = specs["kernelspecs"]["python3"]["spec"]["argv"]
    # jupyter_client starts a kernel spec's "python" with the server's own interpreter, and the
    # server runs from the course environment, as does the `python` of its terminals
    assert argv[0] == "python" or Path(argv[0]).parent == Path(sys.prefix) / "bin", argv
    prefix = student.run('python -c "import sys, course_lib; print(sys.prefix)"').strip()
    assert Path(prefix) == Path(sys.prefix)

    # the hub, the proxy, the servers: all on loopback
    listening = _listening_addresses(_process_tree(hub.pid))
    assert len(listening) >= 3 + len(hub.servers), listening
    assert all(_is_loopback(address) for address in listening), listening


def test_instructor_releases_and_students_fetch_validate_answer_submit(hub: Hub) -> None:
    instructor = hub.instructor
    output = instructor.run(f"cd ~/cnn-course && course release {ASSIGNMENT}")
    assert "no solution, no hidden test" in output
    # the students of the roster into nbgrader's gradebook, with their names
    instructor.run(
        f"cd ~/cnn-course && awk -F, 'NR == 1 || $2 == \"student\"' {hub.roster} > students.csv"
        " && nbgrader db student import students.csv"
    )
    instructor.run(f"cd ~/cnn-course && nbgrader release_assignment {ASSIGNMENT}")
    outbound = hub.exchange / COURSE_ID / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert outbound.is_file()
    hidden = hidden_test_lines(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    assert not [line for line in hidden if line in outbound.read_text()]

    correct = solution_answers(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    answers = {CORRECT: correct, BUGGY: {**correct, "corr2d": FLIPPED_CORR2D}, EMPTY: {}}
    for name in STUDENTS:
        student = hub.servers[name]
        listed = student.assignments()
        assert [a["status"] for a in listed] == ["released"], listed
        fetched = student.assignment_action("fetch")
        assert "fetched" in [a["status"] for a in fetched], fetched
        path = f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
        model = student.json("GET", f"api/contents/{path}", params={"content": 1})
        notebook = model["content"]
        for cell in notebook["cells"]:
            grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if cell["metadata"].get("nbgrader", {}).get("solution") and grade_id in answers[name]:
                cell["source"] = answers[name][grade_id]
        student.request(
            "PUT", f"api/contents/{path}", json={"type": "notebook", "content": notebook}
        )
        if name == CORRECT:
            # the Validate button: nbgrader runs the notebook in the course's kernel
            verdict = student.json("POST", "assignments/validate", json={"path": path})
            assert verdict["success"], verdict["value"]
            assert not verdict["value"].get("failed"), verdict["value"]
        submitted = student.assignment_action("submit")
        assert "submitted" in [a["status"] for a in submitted], submitted

    inbound = hub.exchange / COURSE_ID / "inbound"
    # nbgrader saw each student under their own id
    assert {entry.name.split("+")[0] for entry in inbound.iterdir()} == set(STUDENTS)
    # students can drop submissions into the inbound folder but not list it
    assert not inbound.stat().st_mode & 0o004


def test_instructor_collects_and_autogrades(hub: Hub) -> None:
    instructor = hub.instructor
    instructor.run(f"cd ~/cnn-course && nbgrader collect {ASSIGNMENT}")
    for name in STUDENTS:
        folder = hub.course / "submitted" / name / ASSIGNMENT
        assert (folder / f"{ASSIGNMENT}.ipynb").is_file()
        assert (folder / "timestamp.txt").is_file()
    output = instructor.run(
        f"cd ~/cnn-course && course autograde {ASSIGNMENT} --jobs 2 --timeout 10 --quiet"
    )
    assert "3 submissions" in output, output
    data = _latest_report(hub.course)
    assert {n: s["score"] for n, s in data["students"].items()} == EXPECTED_SCORES
    carol = data["students"][BUGGY]["tests"]
    assert carol["test_corr2d"]["diagnosis"] == "kernel_flipped"
    assert not data["suspicious"]
    # the formgrader's gradebook holds the verified scores
    rows = _formgrader_submissions(hub)
    assert {n: rows[n]["score"] for n in STUDENTS} == EXPECTED_SCORES
    assert all(rows[n]["autograded"] for n in STUDENTS)


def _log_in(browser, hub: Hub, name: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url(re.compile(rf"/user/{re.escape(name)}/"), timeout=120_000)
    return page, errors


@pytest.mark.browser
def test_formgrader_shows_the_verified_scores(hub: Hub, browser) -> None:
    shots = ROOT / "artifacts" / "jupyterhub"
    shots.mkdir(parents=True, exist_ok=True)
    page, errors = _log_in(browser, hub, INSTRUCTOR)
    base = f"{hub.url}/user/{INSTRUCTOR}/formgrader"
    page.goto(f"{base}/manage_submissions/{ASSIGNMENT}")
    page.wait_for_function(
        "() => document.querySelectorAll('td.student-id').length === 3"
        " && Array.from(document.querySelectorAll('td.score')).every(td => td.innerText)",
        timeout=60_000,
    )
    page.screenshot(path=str(shots / "formgrader-submissions.png"))
    rows = page.evaluate(
        "() => Array.from(document.querySelectorAll('tbody tr')).map(tr =>"
        " [tr.querySelector('td.student-name').innerText,"
        "  tr.querySelector('td.student-id').innerText, tr.querySelector('td.score').innerText,"
        "  tr.querySelector('td.status').innerText])"
    )
    shown = {student: score for _, student, score, _ in rows}
    assert shown == {n: f"{EXPECTED_SCORES[n]:g} / 20" for n in STUDENTS}, rows
    assert {name for name, *_ in rows} == {f"Student, {n.title()}" for n in STUDENTS}, rows
    assert all(status.strip() == "graded" for *_, status in rows), rows
    assert not errors, errors
    page.close()


def test_course_feedback_pages_show_score_and_misconception(hub: Hub) -> None:
    output = hub.instructor.run(f"cd ~/cnn-course && course feedback {ASSIGNMENT}")
    assert "feedback for 3 students" in output
    hidden = hidden_test_lines(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    for name in STUDENTS:
        page = (hub.course / "feedback" / name / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
        assert f"{EXPECTED_SCORES[name]:g} / 20" in page
        assert not [line for line in hidden if line in page], name
    carol = (hub.course / "feedback" / BUGGY / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "flipped" in carol


def test_feedback_released_through_the_exchange_reaches_each_student(hub: Hub) -> None:
    hub.instructor.run(f"cd ~/cnn-course && nbgrader release_feedback {ASSIGNMENT}")
    hidden = hidden_test_lines(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    for name in STUDENTS:
        student = hub.servers[name]
        listed = student.assignment_action("fetch_feedback")
        submissions = [s for a in listed if a["status"] == "submitted" for s in a["submissions"]]
        assert submissions and submissions[-1]["has_local_feedback"], listed
        folder = submissions[-1]["local_feedback_path"]
        page = student.read(f"{folder}/{ASSIGNMENT}.html")
        assert re.search(rf"Score:\s*{EXPECTED_SCORES[name]:g}\s*/\s*20", page), page[:2000]
        assert not [line for line in hidden if line in page], name
        if name == BUGGY:
            assert "flipped" in page


def test_grades_export(hub: Hub) -> None:
    hub.instructor.run("cd ~/cnn-course && course grades -o grades.csv")
    rows = list(csv.DictReader(io.StringIO(hub.instructor.read("cnn-course/grades.csv"))))
    assert {r["student"]: float(r["total"]) for r in rows} == EXPECTED_SCORES
    carol = next(r for r in rows if r["student"] == BUGGY)
    assert float(carol["corr2d"]) == 0.0 and float(carol["conv2d_forward"]) > 0


def _manual_score(hub: Hub, student: str, grade: str) -> float | None:
    """The manual score of one cell of a student's notebook, from the formgrader's API."""
    notebooks = hub.instructor.json(
        "GET", f"formgrader/api/submitted_notebooks/{ASSIGNMENT}/{ASSIGNMENT}"
    )
    submission = next(n for n in notebooks if n["student"] == student)
    grades = hub.instructor.json(
        "GET", "formgrader/api/grades", params={"submission_id": submission["id"]}
    )
    return next(g for g in grades if g["name"] == grade)["manual_score"]


@pytest.mark.browser
def test_manual_score_set_in_the_formgrader(hub: Hub, browser) -> None:
    """The instructor gives carol 1 point by hand for test_corr2d in the formgrader."""
    shots = ROOT / "artifacts" / "jupyterhub"
    notebooks = hub.instructor.json(
        "GET", f"formgrader/api/submitted_notebooks/{ASSIGNMENT}/{ASSIGNMENT}"
    )
    submission = next(n for n in notebooks if n["student"] == BUGGY)
    page, errors = _log_in(browser, hub, INSTRUCTOR)
    page.goto(f"{hub.url}/user/{INSTRUCTOR}/formgrader/submissions/{submission['id']}")
    score = page.locator("input.score#test_corr2d")
    score.wait_for(timeout=60_000)
    score.scroll_into_view_if_needed()
    score.fill(f"{MANUAL_POINTS:g}")
    score.press("Tab")  # the formgrader saves on change
    try:
        _wait_for(
            lambda: _manual_score(hub, BUGGY, "test_corr2d") == MANUAL_POINTS,
            90,
            "the manual score was not saved",
        )
    finally:
        page.screenshot(path=str(shots / "formgrader-manual-score.png"))
    # the grading page takes MathJax from nbconvert's CDN address, which is offline here
    assert not [e for e in errors if "MathJax is not defined" not in e], errors
    page.close()
    assert _formgrader_submissions(hub)[BUGGY]["score"] == EXPECTED_SCORES[BUGGY] + MANUAL_POINTS


def test_regrading_one_student_keeps_the_manual_score(hub: Hub) -> None:
    """carol is regraded alone; the grader's point stays, the others' grades are untouched.

    nbgrader's score of a cell is its manual score where one is set, and ``course autograde``
    writes the verified points as the auto score: the manual score is kept, not overwritten.
    """
    before = _latest_report(hub.course)
    hub.instructor.run(
        f"cd ~/cnn-course && course autograde {ASSIGNMENT} --student {BUGGY} --quiet"
    )
    after = _latest_report(hub.course)
    assert after != before
    assert set(after["students"]) == {BUGGY}
    assert after["students"][BUGGY]["score"] == EXPECTED_SCORES[BUGGY]  # the verified score
    assert _manual_score(hub, BUGGY, "test_corr2d") == MANUAL_POINTS
    expected = {**EXPECTED_SCORES, BUGGY: EXPECTED_SCORES[BUGGY] + MANUAL_POINTS}
    rows = _formgrader_submissions(hub)
    assert {n: rows[n]["score"] for n in STUDENTS} == expected
    hub.instructor.run("cd ~/cnn-course && course grades -o grades.csv")
    exported = csv.DictReader(io.StringIO(hub.instructor.read("cnn-course/grades.csv")))
    assert {r["student"]: float(r["total"]) for r in exported} == expected


def test_feedback_shows_the_manual_score(hub: Hub) -> None:
    hub.instructor.run(f"cd ~/cnn-course && course feedback {ASSIGNMENT}")
    page = (hub.course / "feedback" / BUGGY / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert f"{EXPECTED_SCORES[BUGGY] + MANUAL_POINTS:g} / 20" in page
    assert "set by your grader" in page


def test_the_formgraders_autograde_button_says_what_to_run(hub: Hub) -> None:
    """What the formgrader's Autograde button calls: refused, with the command to run."""
    before = _formgrader_submissions(hub)
    answer = hub.instructor.json(
        "POST", f"formgrader/api/submission/{ASSIGNMENT}/{BUGGY}/autograde"
    )
    assert answer["success"] is False
    said = answer.get("error", "") + answer.get("log", "")
    assert f"course autograde {ASSIGNMENT} --student {BUGGY}" in said
    assert _formgrader_submissions(hub) == before
