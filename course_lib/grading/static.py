"""What an answer may use, decided outside the student's process by reading its code.

The in-process guard (``guard.py``) and the import blocker run where the student's code runs,
so that code could switch them off. This module decides "forbidden" in the grader instead: it
parses each answer cell (as code, not as text) and follows every name to what it was imported
as, so that ``import numpy as n; n.convolve``, ``from numpy import correlate as c`` and
``getattr(numpy, "conv" + "olve")`` all count. It reports:

- imports of modules the exercise does not allow (SciPy, PyTorch, course_lib, ``os``, ``sys``,
  ``importlib``, ``ctypes``, ...; relative imports);
- ready-made operators and private modules reached through allowed ones (``numpy.convolve``,
  ``numpy.correlate``, ``numpy._core....``, ``numpy.core``);
- code that builds code or reaches around names: ``exec``, ``eval``, ``compile``, ``__import__``,
  ``globals``/``vars``/``locals``, ``open``, ``getattr``/``setattr``/``delattr`` on a module or
  with a computed name, and attributes such as ``__dict__``, ``__class__``, ``__subclasses__``,
  ``__globals__``, ``__builtins__``;
- assignments to attributes of modules (``np.allclose = ...``);
- for a module allowed only for its types (``torch`` in ``layer_output_shapes``, whose inputs are
  ``torch.nn`` modules): anything but referring to ``torch.nn`` classes (no calls into it).

A finding in a function's cell costs that function's tests their points, with a message that
names the line and what was used.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

__all__ = [
    "SAFE_STDLIB",
    "SYSTEM_MODULES",
    "CodePolicy",
    "Finding",
    "check_cell",
    "suspicious_code",
]

#: Standard-library modules an answer may import: pure computation, no files, no processes.
SAFE_STDLIB: tuple[str, ...] = (
    "math",
    "cmath",
    "itertools",
    "functools",
    "collections",
    "operator",
    "numbers",
    "fractions",
    "decimal",
    "statistics",
    "typing",
    "dataclasses",
    "enum",
    "abc",
    "copy",
    "bisect",
    "heapq",
    "string",
    "re",
    "warnings",
)

#: Modules that reach the system (files, processes, the interpreter's machinery): a cell that is
#: not an answer and imports one of them is flagged for the instructor to look at.
SYSTEM_MODULES: frozenset[str] = frozenset(
    {
        "os",
        "sys",
        "shutil",
        "subprocess",
        "ctypes",
        "cffi",
        "socket",
        "importlib",
        "pathlib",
        "glob",
        "pickle",
        "marshal",
        "signal",
        "resource",
        "threading",
        "multiprocessing",
        "concurrent",
        "asyncio",
        "gc",
        "inspect",
        "builtins",
        "types",
        "tempfile",
        "sqlite3",
        "urllib",
        "http",
        "runpy",
        "code",
        "pty",
        "fcntl",
        "mmap",
        "posix",
        "nbgrader",
        "course_lib",
        "IPython",
    }
)

#: Modules an answer may import for a few harmless attributes only (printing, timing).
LIMITED_MODULES: dict[str, frozenset[str]] = {
    "sys": frozenset(
        {"stdout", "stderr", "float_info", "int_info", "maxsize", "version_info", "byteorder"}
    ),
    "time": frozenset({"time", "perf_counter", "monotonic", "process_time", "sleep"}),
}

#: Names whose use builds or runs code, reaches around names, or opens files.
DYNAMIC_NAMES: dict[str, str] = {
    "exec": "runs code built at run time",
    "eval": "runs code built at run time",
    "compile": "builds code at run time",
    "__import__": "imports a module by a computed name",
    "globals": "reaches the namespace by name",
    "locals": "reaches the namespace by name",
    "vars": "reaches an object's namespace by name",
    "__builtins__": "reaches the built-in functions by name",
    "open": "opens files",
    "breakpoint": "starts a debugger",
    "input": "waits for keyboard input",
    "setattr": "changes an attribute by name",
    "delattr": "deletes an attribute by name",
    "memoryview": "reads raw memory",
}

#: Attributes that reach an object's internals (the classic sandbox escapes).
DUNDER_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "__dict__",
        "__class__",
        "__subclasses__",
        "__globals__",
        "__builtins__",
        "__code__",
        "__closure__",
        "__getattribute__",
        "__import__",
        "__loader__",
        "__spec__",
        "__self__",
        "__func__",
        "__base__",
        "__bases__",
        "__mro__",
        "__reduce__",
        "__reduce_ex__",
        "__setattr__",
        "__delattr__",
        "__getattr__",
        "__init_subclass__",
        "__traceback__",
        "__frame__",
        "f_globals",
        "f_locals",
        "f_back",
        "gi_frame",
        "cr_frame",
        "tb_frame",
    }
)

#: Methods that run a module or make a tensor to run it on (checked where a module is type-only).
RUNNING_METHODS: frozenset[str] = frozenset(
    {
        "forward",
        "__call__",
        "new_zeros",
        "new_ones",
        "new_empty",
        "new_full",
        "new_tensor",
        "register_forward_hook",
        "register_forward_pre_hook",
        "apply",
    }
)

#: Dotted names reached through an allowed module that are never allowed.
ALWAYS_FORBIDDEN: tuple[str, ...] = ("numpy.core", "numpy.ctypeslib", "numpy.testing")


@dataclass(frozen=True)
class CodePolicy:
    """What one function's answer cell may use.

    ``allowed_imports``: top-level modules it may import; ``forbidden_names``: dotted names it
    may not use (a name and everything below it); ``type_only``: modules it may refer to only
    for their classes (``torch``: ``torch.nn.Conv2d`` is fine, calling anything in it is not).
    """

    allowed_imports: tuple[str, ...] = ("numpy", *SAFE_STDLIB)
    forbidden_names: tuple[str, ...] = ("numpy.convolve", "numpy.correlate")
    type_only: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """Something an answer cell uses that it may not: ``kind`` is a report flag."""

    kind: str
    line: int
    what: str
    evidence: str

    def message(self, function: str) -> str:
        return (
            f"{function}: line {self.line} {self.what}, which is not allowed in this exercise "
            f"(`{self.evidence}`): write it with NumPy"
        )


def _dotted(node: ast.AST, bindings: dict[str, str]) -> str | None:
    """The dotted module path an expression names (``np.lib.stride_tricks``), if it starts at
    an imported name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in bindings:
        return ".".join([bindings[node.id], *reversed(parts)])
    return None


def _matches(name: str, prefixes: tuple[str, ...]) -> str | None:
    for prefix in prefixes:
        if name == prefix or name.startswith(prefix + "."):
            return prefix
    return None


class _Checker(ast.NodeVisitor):
    def __init__(self, policy: CodePolicy, bindings: dict[str, str], lines: list[str]) -> None:
        self.policy = policy
        self.bindings = dict(bindings)
        self.lines = lines
        self.findings: list[Finding] = []
        self.forbidden = (*policy.forbidden_names, *ALWAYS_FORBIDDEN)

    def add(self, kind: str, node: ast.AST, what: str) -> None:
        line = getattr(node, "lineno", 0)
        text = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
        finding = Finding(kind, line, what, text[:160])
        if finding not in self.findings:
            self.findings.append(finding)

    # -- imports ---------------------------------------------------------------------------

    def _allowed_module(self, module: str) -> bool:
        top = module.partition(".")[0]
        if top in LIMITED_MODULES:
            return module == top
        return top in self.policy.allowed_imports

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not self._allowed_module(alias.name):
                self.add("forbidden-call", node, f"imports {alias.name}")
                continue
            self._check_name(alias.name, node)
            if alias.asname:
                self.bindings[alias.asname] = alias.name
            else:
                top = alias.name.partition(".")[0]
                self.bindings[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level or not self._allowed_module(module):
            self.add("forbidden-call", node, f"imports from {'.' * node.level}{module}")
            return
        for alias in node.names:
            if alias.name == "*":
                self.add("forbidden-call", node, f"imports everything from {module}")
                continue
            full = f"{module}.{alias.name}"
            if self._check_name(full, node):
                continue
            self.bindings[alias.asname or alias.name] = full

    # -- names reached through modules ---------------------------------------------------------

    def _check_name(self, dotted: str, node: ast.AST) -> bool:
        """Report ``dotted`` if it is forbidden or private; True when it was reported."""
        hit = _matches(dotted, self.forbidden)
        if hit:
            self.add("forbidden-call", node, f"uses {hit}")
            return True
        parts = dotted.split(".")
        limited = LIMITED_MODULES.get(parts[0])
        if limited is not None and len(parts) > 1 and parts[1] not in limited:
            self.add("forbidden-call", node, f"uses {parts[0]}.{parts[1]}")
            return True
        if any(p.startswith("_") for p in parts[1:]):
            self.add("forbidden-call", node, f"uses the private name {dotted}")
            return True
        return False

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in DUNDER_ATTRIBUTES:
            self.add("introspection", node, f"reaches the internals of an object ({node.attr})")
        dotted = _dotted(node, self.bindings)
        if dotted is not None:
            self._check_name(dotted, node)
            top = _matches(dotted, self.policy.type_only)
            if top and not self._type_reference(dotted):
                self.add("forbidden-call", node, f"uses {dotted}")
            # the outermost attribute of a chain was checked; its inner parts are prefixes
            return
        self.generic_visit(node)

    def _type_reference(self, dotted: str) -> bool:
        """``torch.nn`` or ``torch.nn.SomeClass``: referring to a class, not using a function."""
        parts = dotted.split(".")
        if parts[:2] != [parts[0], "nn"] and dotted != parts[0]:
            return False
        return len(parts) <= 2 or (len(parts) == 3 and parts[2][:1].isupper())

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (
            self.policy.type_only
            and isinstance(func, ast.Attribute)
            and func.attr in RUNNING_METHODS
        ):
            self.add("forbidden-call", node, f"calls .{func.attr}(), which runs a module")
        dotted = _dotted(func, self.bindings)
        if dotted is not None and _matches(dotted, self.policy.type_only):
            self.add("forbidden-call", node, f"calls {dotted}")
        if isinstance(func, ast.Name) and func.id in ("getattr", "hasattr") and node.args:
            target = node.args[0]
            name = node.args[1] if len(node.args) > 1 else None
            target_dotted = _dotted(target, self.bindings)
            constant = isinstance(name, ast.Constant) and isinstance(name.value, str)
            if target_dotted is not None:
                if not constant:
                    self.add(
                        "dynamic-code", node, f"reaches into {target_dotted} by a computed name"
                    )
                else:
                    self._check_name(f"{target_dotted}.{name.value}", node)  # type: ignore[union-attr]
            elif constant and name.value in DUNDER_ATTRIBUTES:  # type: ignore[union-attr]
                self.add("introspection", node, f"reaches {name.value}")  # type: ignore[union-attr]
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in DYNAMIC_NAMES and node.id not in self.bindings:
            kind = "dynamic-code" if node.id not in ("open",) else "reads-course-files"
            self.add(kind, node, DYNAMIC_NAMES[node.id])
        elif node.id in self.bindings and isinstance(node.ctx, ast.Load):
            dotted = self.bindings[node.id]
            if _matches(dotted, self.policy.type_only) and not self._type_reference(dotted):
                self.add("forbidden-call", node, f"uses {dotted}")

    # -- changing modules ----------------------------------------------------------------------

    def _assigned(self, target: ast.AST, node: ast.AST) -> None:
        if isinstance(target, ast.Attribute | ast.Subscript):
            base = target.value
            dotted = _dotted(base, self.bindings)
            if dotted is not None:
                self.add("patches-checker", node, f"changes the module {dotted}")
        elif isinstance(target, ast.Tuple | ast.List):
            for item in target.elts:
                self._assigned(item, node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._assigned(target, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._assigned(node.target, node)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._assigned(target, node)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            if name in self.bindings:
                self.add("patches-checker", node, f"rebinds the module name {name}")


def check_cell(source: str, policy: CodePolicy | None = None, *, setup: str = "") -> list[Finding]:
    """What ``source`` (an answer cell) uses that ``policy`` does not allow, in order.

    ``setup`` is the exercise's own set-up code (its imports give names such as ``np``). A cell
    that does not parse has no findings here (its SyntaxError is reported as a cell error).
    """
    policy = policy or CodePolicy()
    bindings: dict[str, str] = {}
    try:
        setup_tree = ast.parse(setup)
    except SyntaxError:
        setup_tree = ast.Module(body=[], type_ignores=[])
    for node in setup_tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.partition(".")[0]
                bindings[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                bindings[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    checker = _Checker(policy, bindings, source.splitlines())
    checker.visit(tree)
    return sorted(checker.findings, key=lambda f: f.line)


def suspicious_code(source: str) -> list[Finding]:
    """What a cell that is not an answer (a cell the student added, or an unlocked one) does
    that reaches the system or around names: not a reason to lose points, a flag with evidence.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines = source.splitlines()
    found: list[Finding] = []

    def add(node: ast.AST, what: str) -> None:
        line = getattr(node, "lineno", 0)
        text = lines[line - 1].strip()[:160] if 0 < line <= len(lines) else ""
        finding = Finding("suspicious-code", line, what, text)
        if finding not in found:
            found.append(finding)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            for name in names:
                if name.startswith(".") or name.partition(".")[0] in SYSTEM_MODULES:
                    add(node, f"imports {name}")
        elif isinstance(node, ast.Name) and node.id in DYNAMIC_NAMES:
            add(node, DYNAMIC_NAMES[node.id])
        elif isinstance(node, ast.Attribute) and node.attr in DUNDER_ATTRIBUTES:
            add(node, f"reaches the internals of an object ({node.attr})")
    return sorted(found, key=lambda f: f.line)
