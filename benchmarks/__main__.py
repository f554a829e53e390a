"""Run every benchmark in one process: ``python -m benchmarks [NAME ...]``.

Each module ``benchmarks/bench_*.py`` has a ``main()`` that prints its ratios.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

from benchmarks._timing import steady_allocator


def main(argv: list[str]) -> None:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = [f"bench_{a.removeprefix('bench_')}" for a in argv] or names
    print(steady_allocator(), flush=True)
    for name in wanted:
        if name not in names:
            raise SystemExit(f"no benchmark {name!r}; available: {', '.join(names)}")
        print(f"=== {name} ===", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
