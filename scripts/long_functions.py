"""List functions longer than a limit (default 60 lines), longest first.

    python scripts/long_functions.py [--max 60] [paths...]   (default: fiftyone_genre operators)

Exits 1 when any is found, so it can guard the architecture rule in tests.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def long_functions(paths: list[Path], limit: int) -> list[tuple[int, str]]:
    found = []
    for root in paths:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in files:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > limit:
                        found.append((length, f"{path}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max", type=int, default=60)
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("fiftyone_genre"), Path("operators")])
    args = parser.parse_args(argv)
    found = long_functions(args.paths, args.max)
    for length, where in found:
        print(f"{length:5d}  {where}")
    print(f"{len(found)} function(s) over {args.max} lines")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
