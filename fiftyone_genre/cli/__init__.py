"""``fiftyone-genre``: one subcommand per stage, plus ``demo`` and ``synth``.

Each stage's commands live in their own module here with a ``register(sub)``
function; the commands only parse arguments and call the library.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

#: Modules under fiftyone_genre.cli that add subcommands, in data-flow order.
COMMAND_MODULES = ("synth", "importing", "labels", "features", "training", "analysis", "classify", "demo", "app")


def load_dataset(name: str, hint: str = "see `fiftyone datasets list`"):
    """The named FiftyOne dataset, or a ValueError that names it and the database."""
    import fiftyone as fo

    if not fo.dataset_exists(name):
        raise ValueError(f"no dataset '{name}' in database '{fo.config.database_name}' ({hint})")
    return fo.load_dataset(name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fiftyone-genre",
        description="Audio-visual video genre classification on FiftyOne datasets.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"fiftyone_genre.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as e:
        # Library errors name the file/key; show them without a traceback.
        print(f"fiftyone-genre {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, permission denied: the OS names the file
        print(f"fiftyone-genre {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - a bug or an unforeseen input: one line, exit 1
        if os.environ.get("FIFTYONE_GENRE_DEBUG"):
            raise
        print(
            f"fiftyone-genre {args.command}: unexpected error: {type(e).__name__}: {e} "
            "(set FIFTYONE_GENRE_DEBUG=1 to see the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
