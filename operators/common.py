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
import re
from collections.abc import Callable

import fiftyone.operators as foo
import fiftyone.operators.types as types

#: The library's progress callback signature: ``(fraction in [0, 1], label)``.
ProgressFn = Callable[[float, str], None]


#: A delegated run's progress is one database write per update: at most one per this many seconds.
DELEGATED_PROGRESS_EVERY_S = 1.0


def progress_fn(ctx) -> ProgressFn:
    """A library progress callback ``(fraction, label)`` that reports to the App.

    Immediate runs show it in the operator's progress bar, delegated runs
    store it on the run document (the Genre panel's Runs list reads it there;
    one database write per update, so at most one a second). Reporting must
    never break the work (the App may have gone away mid-run), so every
    failure is swallowed; values outside [0, 1] are clamped because the App's
    bar misbehaves on them.
    """
    import time

    last: list = []
    every = DELEGATED_PROGRESS_EVERY_S if getattr(ctx, "delegated", False) else 0.0

    def report(fraction: float, label: str) -> None:
        value = min(1.0, max(0.0, float(fraction)))
        key = (round(value, 3), label)
        now = time.monotonic()
        if last and (last[0] == key or (value < 1.0 and now - last[1] < every)):
            return  # nothing new to show, or too soon after the last write
        last[:] = [key, now]
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


#: A run that writes into a folder refuses to start with less free space there.
MIN_FREE_BYTES = 200 * 2**20


def output_dir_problem(value: str | None, min_free: int = MIN_FREE_BYTES) -> str | None:
    """Why a run could not write into the folder ``value`` on the server, or None.

    Checked in the form, before a run is scheduled: a scheduled run into a
    folder it cannot write used to fail at once with only a traceback in the
    database. A missing folder is fine (the run creates it) when its nearest
    existing parent is a writable folder with ``min_free`` bytes free.
    """
    import shutil

    path = expand_path(value)
    if not path:
        return None
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"{existing} is a file on the App server, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"the App server cannot write to {existing}"
    free = shutil.disk_usage(existing).free
    if free < min_free:
        return f"only {free / 2**20:.0f} MB free under {existing}; a run needs at least {min_free / 2**20:.0f} MB"
    return None


def field_name(label: str | None, name: str) -> str:
    """What a message calls a field: its label without "(optional)", else its parameter name."""
    return re.sub(r"\s*\(optional\)\s*$", "", label or "").strip() or name


def named(field: str, problem: str) -> str:
    """``problem`` as one sentence that starts with the field's name ("Path: no such folder ...")."""
    if problem.lower().startswith(field.lower()):
        return problem
    if problem[:1].isupper() and problem[1:2].islower():  # a plain word, not "YouTube" or a path
        problem = problem[0].lower() + problem[1:]
    return f"{field}: {problem}"


def _mark_error(view) -> None:
    """Give ``view``'s MUI input the error state: red outline and ``aria-invalid``.

    FiftyOne 1.22 draws the field's ``error_message`` under it but never sets
    MUI's ``error`` prop; the text and dropdown views pass
    ``componentsProps.field`` / ``.select`` on to MUI, so the flag goes there.
    ``View.to_json`` emits ``_kwargs`` after the attribute, so both are set.
    """
    slot = "select" if isinstance(view, types.Choices) else "field"
    props = dict(view._kwargs.get("componentsProps") or view.componentsProps or {})
    props[slot] = {**props.get(slot, {}), "error": True}
    view.componentsProps = view._kwargs["componentsProps"] = props


class Form:
    """One validation pattern for every operator form.

    A problem with a field marks *that field*: its own ``invalid`` and
    ``error_message`` (FiftyOne prints the message under the field) plus
    MUI's error state (red outline, ``aria-invalid``); the message starts
    with the field's name. A problem with no field of its own (nothing
    selected, no predictions yet) is a red box, paired with a hidden invalid
    property. The form itself is never marked invalid: FiftyOne stops
    validating at an invalid parent, which would hide every field's error.
    Any invalid property keeps Execute and Schedule disabled. ``execute``
    rebuilds the same form and raises the first problem as one sentence
    (:meth:`raise_first`), which is what an SDK call sees.
    """

    def __init__(self, ctx, inputs: types.Object | None = None):
        self.ctx = ctx
        self.params = ctx.params or {}
        self.inputs = inputs if inputs is not None else types.Object()
        self.problems: list[str] = []

    def field(self, kind: str, name: str, problem: str | None = None, missing: str = "required.", **kwargs) -> types.Property:
        """``inputs.<kind>(name, ...)``; with a ``problem`` (or ``required`` and empty) the field shows it.

        ``required=True`` is checked here, not by FiftyOne, so that the
        message names the field (``missing`` says what to enter).
        """
        view = kwargs.pop("view", None)
        label = kwargs.get("label") or (view.label if view is not None else None)
        if kwargs.pop("required", False) and problem is None:
            value = self.params.get(name, kwargs.get("default"))
            problem = missing if value is None or (isinstance(value, str) and not value.strip()) else None
        if view is None and kind in ("str", "int", "float"):
            view = types.TextFieldView()
        if problem:
            problem = named(field_name(label, name), problem)
            self.problems.append(problem)
            if view is not None:
                _mark_error(view)
        if view is not None:
            kwargs["view"] = view
        return getattr(self.inputs, kind)(name, invalid=bool(problem), error_message=problem or "", **kwargs)

    def block(self, name: str, message: str, description: str | None = None) -> None:
        """A problem that belongs to no single field: a red box, Execute disabled.

        FiftyOne does not print the ``error_message`` of a view-only property,
        so a hidden invalid property keeps the form from running and the red
        box says the sentence (and how to fix it) once.
        """
        self.problems.append(message)
        self.inputs.view(f"{name}__invalid", types.HiddenView(), invalid=True, error_message=message)
        form_error(self.inputs, name, message, description)

    def warn(self, name: str, message: str, description: str | None = None) -> None:
        form_warning(self.inputs, name, message, description)

    def notice(self, name: str, message: str, description: str | None = None) -> None:
        form_notice(self.inputs, name, message, description)

    @property
    def valid(self) -> bool:
        return not self.problems

    def property(self, label: str) -> types.Property:
        """The form as FiftyOne wants it; the root stays valid so each field shows its own error."""
        return types.Property(self.inputs, view=types.View(label=label))

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

    The SDK wrapper is generated from the same form: ``op(samples, **fields)``
    takes the form's fields as keyword arguments (``sdk_positional`` names the
    ones that may come by position), fills the others with the form's
    defaults, refuses a name the form does not have, and runs the operator
    through FiftyOne (``delegate=True`` queues it).
    ``sdk_params`` converts the few Python-friendly arguments (a tuple of
    ratios, ``undo=True``) into form fields.
    """

    form_builder: Callable[..., None]
    form_title: str = ""
    #: Form fields an SDK call may pass by position, after the samples.
    sdk_positional: tuple[str, ...] = ()

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

    def sdk_params(self, sample_collection, params: dict) -> dict:
        """Python-friendly arguments -> form fields (the default: as given)."""
        return params

    def fields(self, sample_collection, **params) -> dict[str, str]:
        """The form's input fields for these ``params``: ``{name: label}`` (what ``op(...)`` accepts)."""
        return form_fields(self, sample_collection, params)

    def __call__(self, sample_collection, *args, delegate: bool = False, **kwargs):
        """Run this operator on ``sample_collection`` from Python, through FiftyOne.

        Keyword arguments are the form's fields (``op.fields(dataset)`` lists
        them); a field left out takes the form's default, as in the App
        (evaluate: the test split). ``delegate=True`` queues the run for the
        executor instead. The form's checks apply: a refused input raises its
        one sentence.
        """
        return sdk_call(self, sample_collection, args, kwargs, delegate)


def _resolved_inputs(operator: FormOperator, sample_collection, params: dict) -> dict:
    """The properties ``operator``'s form shows for ``params`` on ``sample_collection``."""
    ctx = foo.ExecutionContext(
        request_params={
            "dataset_name": sample_collection._dataset.name,
            "view": sample_collection.view()._serialize(),
            "params": params,
        }
    )
    return operator.resolve_input(ctx).type.properties


def form_fields(operator: FormOperator, sample_collection, params: dict) -> dict[str, str]:
    """``{name: label}`` of the input fields ``operator``'s form shows for ``params``.

    Message boxes and other view-only entries are not fields; the fields of a
    form that stopped early (a problem with no field, e.g. nothing selected)
    are simply not there.
    """
    return _input_labels(_resolved_inputs(operator, sample_collection, params))


def _is_input(prop: types.Property) -> bool:
    """Whether a user fills this property in (not a box, a text or a hidden flag)."""
    return not isinstance(prop.type, types.Void) and not isinstance(prop.view, types.MarkdownView)


def _input_labels(props: dict) -> dict[str, str]:
    """``{name: label}`` of the properties a user fills in."""
    return {
        name: (p.view.label if p.view is not None and p.view.label else name)
        for name, p in props.items()
        if _is_input(p)
    }


def sdk_call(operator: FormOperator, sample_collection, args: tuple, kwargs: dict, delegate: bool):
    """``operator(sample_collection, *args, **kwargs)``: form fields in, ``execute_operator`` out."""
    positional = operator.sdk_positional
    if len(args) > len(positional):
        raise TypeError(f"{operator.name}() takes {len(positional)} positional argument(s) after the samples "
                        f"({', '.join(positional) or 'none'}), got {len(args)}")
    params = dict(zip(positional, args))
    twice = sorted(set(params) & set(kwargs))
    if twice:
        raise TypeError(f"{operator.name}() got {', '.join(twice)} both by position and by name")
    params.update(kwargs)
    params = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in params.items() if v is not None}
    params = operator.sdk_params(sample_collection, params)
    props = _resolved_inputs(operator, sample_collection, params)
    for name, p in props.items():  # what the App's form would have sent for the fields left out
        if name not in params and name != "view_target" and p.default is not None and _is_input(p):
            params[name] = p.default
    names = sorted(_input_labels(props))
    unknown = sorted(set(params) - set(names))
    if unknown and not any(p.invalid for p in props.values()):  # an invalid form stops early: its own refusal says more
        raise TypeError(f"{operator.name}() has no field {', '.join(unknown)}; its form has: {', '.join(names)}")
    return foo.execute_operator(
        operator.uri, dict(view=sample_collection.view()), params=params, request_delegation=delegate
    )


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


def live(ctx, work, message, outputs, variant=None):
    """Run ``work(progress) -> result dict`` so that an immediate run in the App shows live progress.

    FiftyOne sends ``set_progress`` of an immediate run to the browser only
    when the operator is a generator that yields it, so in the App the library
    call runs on a helper thread while this generator yields its progress
    (stage label and fraction) as it arrives, then a reload, the one-line
    ``message(result)`` toast (``variant(result)``, default "success") and the
    output view (``outputs(result)``, titled "Finished: ..."). The reload comes
    before the output: after the first import into an empty dataset the
    App swaps its empty page for the grid, and an output shown earlier would
    be lost with it. The SDK and delegated runs get the plain result
    (FiftyOne stores delegated progress on the run itself).
    """
    result_variant = variant or (lambda result: "success")
    if not from_app(ctx):
        result = work(progress_fn(ctx))
        finish(ctx, message(result), result_variant(result))
        return result
    return _stream(ctx, work, message, outputs, result_variant)


#: The progress dialog's only button reads "Done" from the first update on
#: (FiftyOne 1.22 hard-codes it); the label says the run is still going.
RUNNING_PREFIX = "Running: "


def _stream(ctx, work, message, outputs, variant):
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
        yield ctx.ops.set_progress(progress=item[0], label=RUNNING_PREFIX + item[1])
    if "error" in box:
        raise box["error"]
    result = box["result"]
    yield ctx.ops.set_progress(progress=1.0, label="Finished")
    yield ctx.ops.reload_dataset()
    yield ctx.ops.notify(message(result), variant=variant(result))
    yield ctx.ops.show_output(outputs=outputs(result).to_json(), results=result)


#: ``componentsProps`` of a MarkdownView whose fenced blocks wrap (forms' previews, outputs).
WRAP_CODE = {"container": {"sx": {"& pre, & code": {"whiteSpace": "pre-wrap", "overflowWrap": "anywhere"}}}}


def report_view() -> types.MarkdownView:
    """A Markdown output whose fenced report lines wrap at the dialog's edge.

    FiftyOne renders a fenced block as ``<pre>`` without wrapping, so a long
    summary line (a model path) was cut; ``white-space: pre-wrap`` keeps the
    columns and wraps what does not fit.
    """
    return types.MarkdownView(componentsProps=WRAP_CODE)


def finished(outputs: types.Object, title: str) -> types.Property:
    """An output that says the run is over: a green "Finished: <title>" line above ``outputs``.

    The progress dialog's only button reads "Done" from the first update on
    (FiftyOne names it), so the result itself says when the run has finished.
    """
    top = types.Object()
    top.view("finished", types.Success(label=f"Finished: {title}"))
    for name, prop in outputs.properties.items():
        top.add_property(name, prop)
    return types.Property(top, view=types.View(label=f"Finished: {title}"))


def headline(text) -> str:
    """The first line of a report (``` fences and list bullets stripped): toasts and the Runs list."""
    for line in str(text).splitlines():
        line = line.strip().strip("`").lstrip("-* ").strip()
        if line:
            return line
    return "Finished"
