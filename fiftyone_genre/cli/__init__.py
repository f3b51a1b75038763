"""``fiftyone-genre``: one subcommand per stage, plus ``demo`` and ``synth``.

Each stage's commands live in their own module here with a ``register(sub)``
function; the commands only parse arguments and call the library.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys

#: Modules under fiftyone_genre.cli that add subcommands, in data-flow order.
COMMAND_MODULES = ("synth", "importing", "labels", "features", "training", "analysis", "classify", "demo", "app")


def load_dataset(name: str, hint: str = "see `fiftyone datasets list`"):
    """The named FiftyOne dataset, or a ValueError that names it and the database.

    Connects first (:func:`fiftyone_genre.database.connect`): a short
    timeout for the whole command, and one sentence if nothing answers.
    """
    import fiftyone as fo

    from fiftyone_genre.database import connect

    connect()
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
    return _dispatch(build_parser().parse_args(argv))


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - sorted by _refusal; anything else is unexpected
        return _report_error(args.command, e)


def run() -> None:
    """The ``fiftyone-genre`` program: the command, then a quick exit with its status.

    A command that owns other processes until it ends (``app``: the App
    server, its executor) sets ``quick_exit=False`` and ends as usual.
    """
    args = build_parser().parse_args()
    status = _dispatch(args)
    if getattr(args, "quick_exit", True):
        before_exit(status)
    sys.exit(status)


def before_exit(status: int) -> int:
    """Let the interpreter's shutdown skip a second pass over every live object; returns ``status``.

    Why: a process that imported torch and FiftyOne holds millions of
    objects in ~3,000 modules, and the interpreter's final garbage
    collections walk all of them: about 1 s of every command's exit on a
    2-core machine (``docs/performance.md``). One collection here still
    finalises what is already garbage (open files are closed); the
    survivors are then frozen, so the final collections skip them, and the
    process ends. atexit handlers run as usual. Only for a process that is
    about to end: a frozen object is never collected.
    """
    gc.collect()
    gc.freeze()
    return status


def _refusal(error: Exception) -> str | None:
    """The sentence for an error the user can act on (exit 2), or None for an unexpected one."""
    from fiftyone_genre.storage import LockHeld

    if isinstance(error, (FileNotFoundError, ValueError, LockHeld)):
        return str(error)  # library errors name the file, key, folder or dataset
    if isinstance(error, OSError):  # disk full, permission denied: the OS (or storage) names the file
        return str(error)
    if "fiftyone_genre.database" in sys.modules or "pymongo" in sys.modules:
        from fiftyone_genre import database

        if isinstance(error, database.DatabaseUnreachable):
            return str(error)
        if database.is_connection_error(error):  # the database went away mid-run
            database.forget_connection()
            return database.unreachable_message()
    return None


def _report_error(command: str, e: Exception) -> int:
    """One line on stderr and the exit status: 2 for a refusal, 1 for anything unexpected."""
    sentence = _refusal(e)
    if sentence is not None:
        print(f"fiftyone-genre {command}: error: {sentence}", file=sys.stderr)
        return 2
    if os.environ.get("FIFTYONE_GENRE_DEBUG"):
        raise e
    print(
        f"fiftyone-genre {command}: unexpected error: {type(e).__name__}: {e} "
        "(set FIFTYONE_GENRE_DEBUG=1 to see the traceback)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    run()
