"""Helpers shared by the operators: progress bridging, view targets, form messages.

Every stage operator is a thin shell around one library call; these helpers
keep the shells consistent so that a newcomer sees the same kind of message
(an error box under the field, a notification after the run) whatever stage
they are in. Checked against FiftyOne 1.22: ``types.Error``, ``types.Warning``,
``types.Notice`` and ``types.Success`` are all ``View`` subclasses rendered as
coloured message boxes in operator forms.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import fiftyone.operators.types as types

#: The library's progress callback signature: ``(fraction in [0, 1], label)``.
ProgressFn = Callable[[float, str], None]


def progress_fn(ctx) -> ProgressFn:
    """A library progress callback ``(fraction, label)`` that reports to the App.

    Immediate runs show it in the operator's progress bar, delegated runs
    store it on the run document. Reporting must never break the work (the
    App may have gone away mid-run), so every failure is swallowed; values
    outside [0, 1] are clamped because the App's bar misbehaves on them.
    """

    last: list[tuple[float, str]] = []

    def report(fraction: float, label: str) -> None:
        value = min(1.0, max(0.0, float(fraction)))
        key = (round(value, 3), label)
        if last and last[0] == key:
            return  # nothing new to show; spare the round-trip
        last[:] = [key]
        try:
            ctx.set_progress(progress=value, label=label)
        except Exception:  # noqa: BLE001 - progress must never break the work
            pass

    return report


def add_view_target(ctx, inputs: types.Object, action: str = "Process") -> types.Property:
    """Offer dataset / current view / selected samples as the samples to work on.

    FiftyOne 1.22 also adds this input on its own once ``ctx.target_view()``
    is called during ``resolve_input``; declaring it here lets us word the
    choices ("Predict the current view") instead of the generic text.
    """
    return inputs.view_target(ctx, action_description=action)


def target_view(ctx):
    """The collection the user chose with the view-target radio (dataset if none)."""
    return ctx.target_view()


def form_error(inputs: types.Object, name: str, message: str, description: str | None = None) -> None:
    """Show a red message box in the form (the form's submit stays possible but obviously wrong)."""
    inputs.view(name, types.Error(label=message, description=description))


def form_warning(inputs: types.Object, name: str, message: str, description: str | None = None) -> None:
    """Show a yellow message box: the run can go ahead, but the user should know."""
    inputs.view(name, types.Warning(label=message, description=description))


def form_notice(inputs: types.Object, name: str, message: str, description: str | None = None) -> None:
    """Show a neutral message box, e.g. what a run will write and where."""
    inputs.view(name, types.Notice(label=message, description=description))


def expand_path(value: str | None) -> str | None:
    """A user-typed path with ``~`` and ``$VARS`` expanded (the server's home, not the browser's)."""
    if not value:
        return None
    return os.path.expandvars(os.path.expanduser(str(value).strip()))


def check_path(
    inputs: types.Object,
    ctx,
    param: str,
    must_be_dir: bool = False,
    must_be_file: bool = False,
) -> bool:
    """Show an error under the field when a path is wrong; True when it is fine.

    An empty value returns False without a message: the field's own
    ``required=True`` already tells the user to fill it in, and shouting
    "no such path" at an empty box is noise. Paths are resolved on the server
    machine, which is what the message says, because a user pasting a path
    from their laptop into a remote App is the common mistake.
    """
    path = expand_path(ctx.params.get(param))
    if not path:
        return False
    if not os.path.exists(path):
        kind = "folder" if must_be_dir else "file" if must_be_file else "path"
        form_error(inputs, f"{param}_error", f"No such {kind}: {path}", "Paths are read on the machine running the App server.")
        return False
    if must_be_dir and not os.path.isdir(path):
        form_error(inputs, f"{param}_error", f"Not a folder: {path}", "Choose the folder, not a file inside it.")
        return False
    if must_be_file and not os.path.isfile(path):
        form_error(inputs, f"{param}_error", f"Not a file: {path}", "Choose a file, not a folder.")
        return False
    return True


def has_field(collection, field: str) -> bool:
    """Whether ``field`` (possibly ``a.b``) exists in the collection's schema."""
    try:
        return collection.has_field(field)
    except Exception:  # noqa: BLE001 - a missing or odd schema means "no"
        return False


def notify_done(ctx, report, variant: str = "success") -> None:
    """Tell the user what happened, using the report's readable ``__str__``.

    Only the first lines are shown (the App's toast is small); the full report
    is what the operator returns, so it also appears in the output view.
    """
    text = str(report).strip()
    lines = text.splitlines()
    short = "\n".join(lines[:4]) + ("\n..." if len(lines) > 4 else "")
    try:
        ctx.ops.notify(short or "Done", variant=variant)
    except Exception:  # noqa: BLE001 - a delegated run has no App to notify
        pass


def as_code_block(text) -> str:
    """A report as a fenced Markdown block for a ``MarkdownView`` output.

    ``types.CodeView`` loads its editor from a CDN, so offline Apps (and our
    browser test) would show "Loading..." forever; Markdown renders locally.
    """
    return "```\n" + str(text).rstrip() + "\n```"
