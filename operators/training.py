"""App operator ``train_model``: the training stage as a form, delegated by default.

Training runs for minutes to hours, and FiftyOne cuts immediate operator runs
at 600 s, so delegated execution is pre-selected (``make app`` starts the
``fiftyone delegated launch`` executor that runs it); an immediate run is
still allowed for a tiny try. A run killed midway continues from ``last.pt``
with the *Resume* box ticked. The model directory is recorded on the dataset
so that the predict form offers it next.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import fiftyone.operators.types as types

from fiftyone_genre import genres as g

from .common import (
    TRAINED_INFO_KEY,
    Form,
    LongRunOperator,
    add_view_target,
    config_field,
    dataset_info,
    expand_path,
    finish,
    finished,
    headline,
    long_run_config,
    output_dir_problem,
    progress_fn,
    report_view,
)

MODALITIES = {"fused": "Fused (picture + sound)", "visual": "Visual only", "audio": "Audio only"}


def experiment(params: dict):
    """The experiment the form describes: the config (or defaults) with the form's epochs on top."""
    from fiftyone_genre.config import load_experiment

    epochs = params.get("epochs")
    return load_experiment(expand_path(params.get("config_path")), train={"epochs": int(epochs)} if epochs else None)


def _run_fields(form: Form, config) -> None:
    """Model directory, modality, epochs, resume, strict."""
    inputs, p = form.inputs, form.params
    form.field("str", "out_dir", output_dir_problem(p.get("out_dir")), required=True,
               missing="required: the folder this run writes to.",
               default=dataset_info(form.ctx, TRAINED_INFO_KEY).get("model_dir"), label="Model directory",
               description="Checkpoints (best.pt, last.pt), TensorBoard logs, curves and the test report go here.")
    modality = types.RadioGroup()
    for value, label in MODALITIES.items():
        modality.add_choice(value, label=label)
    inputs.enum("modality", modality.values(), default=config.model.modality if config else "fused",
                label="Modality", description="Which streams the model sees", view=types.RadioView(choices=modality.choices))
    epochs = p.get("epochs")
    form.field("int", "epochs", "must be at least 1." if epochs is not None and int(epochs) < 1 else None,
               label="Epochs (optional)", description="Overrides the config's train.epochs.")
    inputs.bool("resume", default=False, label="Resume",
                description="Continue from last.pt in the model directory after an interrupted run.")
    inputs.bool("strict", default=False, label="Strict",
                description="Refuse to train if any labelled sample cannot be used (default: skip it and list it).")


def _overwrite_warning(form: Form) -> None:
    from fiftyone_genre.modeling.model import LAST_NAME

    out_dir = expand_path(form.params.get("out_dir"))
    if not out_dir:
        return
    last = os.path.join(out_dir, LAST_NAME)
    if form.params.get("resume") and not os.path.isfile(last):
        form.warn("resume_warning", f"No {last} yet: this will start a new run.")
    elif not form.params.get("resume") and os.path.isfile(last):
        form.warn("overwrite_warning", f"{out_dir} already holds a run; it will be overwritten (tick Resume to continue it).")


def build_train_form(form: Form) -> None:
    ctx = form.ctx
    add_view_target(ctx, form.inputs, action="Train on")
    config = config_field(form, "Experiment config", "Empty = built-in defaults.")
    _run_fields(form, config)
    _overwrite_warning(form)
    view = ctx.target_view()
    if not view.has_sample_field(g.GENRE_FIELD) or not view.has_sample_field(g.SPLIT_FIELD):
        form.block("labels_error", "These samples have no genre labels or no split yet.", "Run remap and split first.")
        return
    if not dataset_info(ctx, g.FEATURES_INFO_KEY):
        form.block("features_error", "No features extracted for this dataset yet.", "Run 'extract features' first.")
        return
    if not form.valid:
        return
    config = experiment(form.params)
    counts = view.exists(f"{g.GENRE_FIELD}.label").count_values(g.SPLIT_FIELD)
    if not counts.get("train"):
        form.block("train_error", "No labelled samples in the train split.")
        return
    parts = ", ".join(f"{counts.get(s, 0)} {s}" for s in g.SPLITS)
    form.notice(
        "plan",
        f"{form.params.get('modality') or config.model.modality} model, {config.train.epochs} epochs, "
        f"{config.train.window}-step windows (stride {config.train.stride}); labelled videos: {parts}.",
        "Runs delegated by default: immediate runs are stopped by FiftyOne after 600 s.",
    )


def _record(ctx, report) -> None:
    """Remember the model on the dataset: the predict form's default and the panel's run info."""
    dataset = ctx.dataset
    dataset.reload()
    dataset.info[TRAINED_INFO_KEY] = {
        "model_dir": str(report.out_dir),
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "best_epoch": getattr(report, "best_epoch", None),
    }
    dataset.save()


class TrainModel(LongRunOperator):
    @property
    def config(self):
        return long_run_config(
            "train_model",
            "Genre: train the audio-visual CNN-LSTM",
            "Train on cached features with a leakage-free split; writes checkpoints and a test report",
            icon="model_training",
        )

    form_builder = staticmethod(build_train_form)
    form_title = "Train genre model"

    def execute(self, ctx):
        from fiftyone_genre.modeling.train import train

        self.checked_form(ctx)
        report = train(
            ctx.target_view(), experiment(ctx.params), expand_path(ctx.params["out_dir"]),
            modality=ctx.params.get("modality") or None, resume=bool(ctx.params.get("resume", False)),
            strict=bool(ctx.params.get("strict", False)), progress=progress_fn(ctx),
        )
        _record(ctx, report)
        finish(ctx, report, variant="warning" if report.skipped else "success")
        return {"report": f"```\n{report}\n```", "headline": headline(report), "out_dir": str(report.out_dir),
                "test": report.test}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("report", label="Training", view=report_view())
        outputs.str("out_dir", label="Model directory")
        return finished(outputs, "Training")

    #: ``op(dataset, "/models/fast", config_path="cpu_fast", delegate=True)``
    sdk_positional = ("out_dir",)


OPERATORS = [TrainModel]
