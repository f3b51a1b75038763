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

import fiftyone.operators as foo
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


def path_problem(value: str | None, must_be_dir: bool = False, must_be_file: bool = False) -> str | None:
    """One sentence saying what is wrong with a user-typed server path, or None when it is fine.

    An empty value is not a problem here: the field's own ``required=True``
    already asks for it. Paths are resolved on the server machine, which the
    message says, because pasting a path from a laptop into a remote App is
    the common mistake.
    """
    path = expand_path(value)
    if not path:
        return None
    if not os.path.exists(path):
        kind = "folder" if must_be_dir else "file" if must_be_file else "path"
        return f"No such {kind} on the App server: {path}"
    if must_be_dir and not os.path.isdir(path):
        return f"Not a folder: {path} (choose the folder, not a file inside it)"
    if must_be_file and not os.path.isfile(path):
        return f"Not a file: {path} (choose a file, not a folder)"
    return None


class Form:
    """One validation pattern for every operator form, as FiftyOne's own plugins do it.

    A problem with a field marks that field (``invalid`` + ``error_message``);
    a problem with no field of its own (no predictions yet, an empty target)
    marks the form itself. FiftyOne lists these messages once, in red, at the
    top of the form and keeps Execute disabled; ``execute``
    rebuilds the same form and raises the first problem as one sentence
    (:meth:`raise_first`), which is what an SDK call sees.
    """

    def __init__(self, ctx, inputs: types.Object | None = None):
        self.ctx = ctx
        self.params = ctx.params or {}
        self.inputs = inputs if inputs is not None else types.Object()
        self.problems: list[str] = []

    def field(self, kind: str, name: str, problem: str | None = None, **kwargs) -> types.Property:
        """``inputs.<kind>(name, ...)``, marked invalid with ``problem`` when there is one."""
        if problem:
            self.problems.append(problem)
        return getattr(self.inputs, kind)(name, invalid=bool(problem), error_message=problem or "", **kwargs)

    def block(self, name: str, message: str, description: str | None = None) -> None:
        """A problem that belongs to no single field: the form is invalid with ``message``.

        The App lists a form's errors (the form's own and its fields') once,
        in red, above the fields; a red box with the same words would say it
        twice, so only the hint on how to fix it gets a box.
        """
        self.problems.append(message)
        if description:
            form_notice(self.inputs, name, description)

    def warn(self, name: str, message: str, description: str | None = None) -> None:
        form_warning(self.inputs, name, message, description)

    def notice(self, name: str, message: str, description: str | None = None) -> None:
        form_notice(self.inputs, name, message, description)

    @property
    def valid(self) -> bool:
        return not self.problems

    def property(self, label: str) -> types.Property:
        """The form as FiftyOne wants it; invalid (Execute disabled) while any problem remains."""
        problem = self.problems[0] if self.problems else None
        return types.Property(
            self.inputs, view=types.View(label=label), invalid=bool(problem), error_message=problem or ""
        )

    def raise_first(self) -> None:
        """In ``execute``: refuse input the form would have refused, in one plain sentence."""
        if self.problems:
            raise ValueError(self.problems[0])


class FormOperator(foo.Operator):
    """An operator whose form is one module-level builder: the App shows it, ``execute`` re-checks it.

    Subclasses set ``form_builder = staticmethod(build_x_form)`` (a function
    filling a :class:`Form`) and ``form_title``; ``execute`` starts with
    ``self.checked_form(ctx)``, so an SDK call or a stale browser tab gets the
    same one-sentence refusal the form showed.
    """

    form_builder: Callable[..., None]
    form_title: str = ""

    def resolve_input(self, ctx):
        form = Form(ctx)
        self.form_builder(form)
        return form.property(self.form_title)

    def checked_form(self, ctx, **options) -> Form:
        """The form built for ``ctx.params`` (builder ``options`` e.g. ``preview=False``), or ValueError."""
        form = Form(ctx)
        self.form_builder(form, **options)
        form.raise_first()
        return form


class LongRunOperator(FormOperator):
    """Work that can outlive the App's 600 s immediate-run limit (features, training, maps).

    Scheduling as a delegated run is pre-selected in the execute menu; the user
    may still run it now. ``long_run_config`` gives the matching config.
    """

    def resolve_delegation(self, ctx):
        return None  # the user chooses; delegation is pre-selected


def long_run_config(name: str, label: str, description: str, icon: str) -> foo.OperatorConfig:
    """The config of a :class:`LongRunOperator`: immediate or delegated, delegated by default."""
    return foo.OperatorConfig(
        name=name,
        label=label,
        description=description,
        icon=icon,
        dynamic=True,
        allow_immediate_execution=True,
        allow_delegated_execution=True,
        default_choice_to_delegated=True,
    )


def config_field(form: Form, label: str, description: str):
    """The "experiment config" field shared by the features and train forms.

    Accepts a shipped config name (cpu_fast, paper_pool, paper_softmax) or a
    YAML file on the server (:func:`fiftyone_genre.config.resolve_config`);
    returns the loaded experiment, or None when the field is empty or wrong
    (the field then says why).
    """
    from fiftyone_genre.config import ConfigError, load_experiment, shipped_configs

    value = form.params.get("config_path")
    experiment, problem = None, None
    if value:
        try:
            experiment = load_experiment(expand_path(value))
        except (ConfigError, ValueError, OSError) as e:
            problem = str(e).splitlines()[0]
    names = ", ".join(shipped_configs())
    form.field("str", "config_path", problem, label=label, description=f"{description} Shipped: {names}; or a YAML file on the server.")
    return experiment


def count_video_files(root: str, limit: int = 100_000) -> int:
    """Video files under ``root`` (stops counting at ``limit``): the import form's preview."""
    from fiftyone_genre.sources.common import VIDEO_EXTENSIONS

    n = 0
    for _, _, files in os.walk(root, followlinks=True):
        n += sum(os.path.splitext(f)[1].lower() in VIDEO_EXTENSIONS for f in files)
        if n >= limit:
            break
    return n


def dataset_info(ctx, key: str) -> dict:
    """``ctx.dataset.info[key]`` as a dict ({} without a dataset or record)."""
    if ctx.dataset is None:
        return {}
    value = (ctx.dataset.info or {}).get(key)
    return value if isinstance(value, dict) else {}


def has_field(collection, field: str) -> bool:
    """Whether ``field`` (possibly ``a.b``) exists in the collection's schema."""
    try:
        return collection.has_field(field)
    except Exception:  # noqa: BLE001 - a missing or odd schema means "no"
        return False


def notify_done(ctx, report, variant: str = "success") -> None:
    """A one-line toast saying what happened; the full report is the operator's output.

    The App's toast cuts long text with "...", so only the report's first
    line goes there. A delegated run has no App to notify.
    """
    if ctx.delegated:
        return
    first = (str(report).strip().splitlines() or ["Done"])[0]
    try:
        ctx.ops.notify(first, variant=variant)
    except Exception:  # noqa: BLE001 - notifying must never fail the run
        pass


def finish(ctx, report, variant: str = "success") -> None:
    """After a run that changed the dataset: refresh the App (immediate runs) and say so."""
    if not ctx.delegated:
        try:
            ctx.ops.reload_dataset()
        except Exception:  # noqa: BLE001 - no App session to reload
            pass
    notify_done(ctx, report, variant)


#: ``dataset.info`` key where the train operator records the model it wrote (predict's default).
TRAINED_INFO_KEY = "genre_trained_model"


def as_code_block(text) -> str:
    """A report as a fenced Markdown block for a ``MarkdownView`` output.

    ``types.CodeView`` loads its editor from a CDN, so offline Apps (and our
    browser test) would show "Loading..." forever; Markdown renders locally.
    """
    return "```\n" + str(text).rstrip() + "\n```"


def from_app(ctx) -> bool:
    """Whether an App prompt (not the SDK, not a delegated executor) runs this operation."""
    return not ctx.delegated and "current_sample" in (ctx.request_params or {})


def live(ctx, work, message, outputs):
    """Run ``work(progress) -> result dict`` so that an immediate run in the App shows live progress.

    FiftyOne sends ``set_progress`` of an immediate run to the browser only
    when the operator is a generator that yields it, so in the App the library
    call runs on a helper thread while this generator yields its progress
    (stage label and fraction) as it arrives, then a reload, the one-line
    ``message(result)`` toast and the output view (``outputs(result)``). The SDK and
    delegated runs get the plain result (FiftyOne stores delegated progress
    on the run itself).
    """
    if not from_app(ctx):
        result = work(progress_fn(ctx))
        finish(ctx, message(result))
        return result
    return _stream(ctx, work, message, outputs)


def _stream(ctx, work, message, outputs):
    import queue
    import threading

    updates: queue.Queue = queue.Queue()
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = work(lambda f, label: updates.put((min(1.0, max(0.0, float(f))), label)))
        except BaseException as e:  # noqa: BLE001 - re-raised in the generator below
            box["error"] = e
        finally:
            updates.put(None)

    threading.Thread(target=run, name="fiftyone-genre-live", daemon=True).start()
    while (item := updates.get()) is not None:
        yield ctx.ops.set_progress(progress=item[0], label=item[1])
    if "error" in box:
        raise box["error"]
    yield ctx.ops.reload_dataset()
    yield ctx.ops.notify(message(box["result"]), variant="success")
    yield ctx.ops.show_output(outputs=outputs(box["result"]).to_json(), results=box["result"])
