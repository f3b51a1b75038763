"""Helpers shared by the operators: progress bridging, view targets, path checks."""

from __future__ import annotations

import os

import fiftyone.operators.types as types


def progress_fn(ctx):
    """A library progress callback ``(fraction, label)`` that reports to the App."""

    def report(fraction: float, label: str) -> None:
        try:
            ctx.set_progress(progress=float(fraction), label=label)
        except Exception:  # noqa: BLE001 - progress must never break the work
            pass

    return report


def add_view_target(ctx, inputs: types.Object) -> None:
    """Offer dataset / current view / selected samples where they make sense."""
    inputs.view_target(ctx)


def target_view(ctx):
    """The collection the user chose with the view-target radio (dataset if none)."""
    return ctx.target_view()


def check_path(inputs: types.Object, ctx, param: str, must_be_dir: bool = False) -> bool:
    """Show an error under the field when a path is missing; True when it is fine."""
    value = ctx.params.get(param)
    if not value:
        return False
    if not os.path.exists(value) or (must_be_dir and not os.path.isdir(value)):
        kind = "folder" if must_be_dir else "path"
        inputs.view(
            f"{param}_error",
            types.Error(label=f"No such {kind}: {value}", description="Check the path on the server machine."),
        )
        return False
    return True
