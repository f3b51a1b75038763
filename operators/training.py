"""App operator ``train_model``: the training stage as a form, delegated by default.

Training runs for minutes to hours, and FiftyOne cuts immediate operator runs
at 600 s, so delegated execution is pre-selected (``fiftyone delegated
launch`` runs it); an immediate run is still allowed for a tiny try. A run
killed midway continues from ``last.pt`` with the *Resume* box ticked.
"""

from __future__ import annotations

import os

import fiftyone.operators as foo
import fiftyone.operators.types as types

from .common import (
    add_view_target,
    as_code_block,
    expand_path,
    form_error,
    form_notice,
    form_warning,
    notify_done,
    progress_fn,
    target_view,
)

MODALITIES = ("fused", "visual", "audio")


def _experiment(params: dict):
    """The experiment the form describes: the YAML (or defaults) with the form's epochs on top."""
    from fiftyone_genre.config import load_experiment

    epochs = params.get("epochs")
    return load_experiment(
        expand_path(params.get("config_path")),
        train={"epochs": int(epochs)} if epochs else None,
    )


def build_train_form(ctx, inputs: types.Object) -> bool:
    """Fill ``inputs``; returns whether the form is valid."""
    from fiftyone_genre import genres as g
    from fiftyone_genre.config import ConfigError
    from fiftyone_genre.model import LAST_NAME

    valid = True
    add_view_target(ctx, inputs, action="Train on")
    inputs.str(
        "config_path",
        label="Experiment config",
        description="e.g. a shipped config name (cpu_fast, paper_pool, paper_softmax) or a YAML file; empty = built-in defaults.",
    )
    config = None
    try:
        config = _experiment(ctx.params)
    except (ConfigError, ValueError) as e:
        form_error(inputs, "config_error", str(e))
        valid = False
    inputs.str(
        "out_dir",
        required=True,
        label="Model directory",
        description="Checkpoints (best.pt, last.pt), TensorBoard logs, curves and the test report go here.",
    )
    modality = types.RadioGroup()
    for m in MODALITIES:
        modality.add_choice(m, label={"fused": "Fused (picture + sound)", "visual": "Visual only", "audio": "Audio only"}[m])
    default_modality = config.model.modality if config else "fused"
    inputs.enum("modality", modality.values(), default=default_modality, label="Modality", view=types.RadioView(choices=modality.choices))
    inputs.int("epochs", label="Epochs (optional)", description="Overrides the YAML's train.epochs.")
    inputs.bool("resume", default=False, label="Resume", description="Continue from last.pt in the model directory after an interrupted run.")
    inputs.bool(
        "strict",
        default=False,
        label="Strict",
        description="Refuse to train if any labelled sample cannot be used (default: skip it and list it in the report).",
    )

    if ctx.params.get("epochs") is not None and int(ctx.params["epochs"]) < 1:
        form_error(inputs, "epochs_error", "Epochs must be at least 1.")
        valid = False
    out_dir = expand_path(ctx.params.get("out_dir"))
    if out_dir:
        last = os.path.join(out_dir, LAST_NAME)
        if ctx.params.get("resume") and not os.path.isfile(last):
            form_warning(inputs, "resume_warning", f"No {last} yet: this will start a new run.")
        elif not ctx.params.get("resume") and os.path.isfile(last):
            form_warning(inputs, "overwrite_warning", f"{out_dir} already holds a run; it will be overwritten (tick Resume to continue it).")

    view = target_view(ctx)
    if not view.has_sample_field(g.GENRE_FIELD) or not view.has_sample_field(g.SPLIT_FIELD):
        form_error(inputs, "labels_error", "These samples have no genre labels or no split yet.", "Run remap and split first.")
        return False
    if not (view._dataset.info or {}).get(g.FEATURES_INFO_KEY):
        form_error(inputs, "features_error", "No features extracted for this dataset yet.", "Run 'extract features' first.")
        return False
    if valid and config is not None:
        counts = view.exists(f"{g.GENRE_FIELD}.label").count_values(g.SPLIT_FIELD)
        parts = ", ".join(f"{counts.get(s, 0)} {s}" for s in g.SPLITS)
        form_notice(
            inputs,
            "plan",
            f"{ctx.params.get('modality') or default_modality} model, {config.train.epochs} epochs, "
            f"{config.train.window}-step windows (stride {config.train.stride}); labelled videos: {parts}.",
            "Runs delegated by default: immediate runs are stopped by FiftyOne after 600 s.",
        )
        if not counts.get("train"):
            form_error(inputs, "train_error", "No labelled samples in the train split.")
            valid = False
    return valid


class TrainModel(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="train_model",
            label="Genre: train the audio-visual CNN-LSTM",
            description="Train on cached features with a leakage-free split; writes checkpoints and a test report",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
            default_choice_to_delegated=True,
            icon="model_training",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        build_train_form(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Train genre model"))

    def resolve_delegation(self, ctx):
        # None lets the user choose; the config pre-selects delegation.
        return None

    def execute(self, ctx):
        from fiftyone_genre.train import train

        report = train(
            target_view(ctx),
            _experiment(ctx.params),
            expand_path(ctx.params["out_dir"]),
            modality=ctx.params.get("modality") or None,
            resume=bool(ctx.params.get("resume", False)),
            strict=bool(ctx.params.get("strict", False)),
            progress=progress_fn(ctx),
        )
        notify_done(ctx, report, variant="warning" if report.skipped else "success")
        return {"report": as_code_block(report), "out_dir": str(report.out_dir), "test": report.test}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("report", label="Training", view=types.MarkdownView())
        outputs.str("out_dir", label="Model directory")
        return types.Property(outputs)

    def __call__(
        self,
        sample_collection,
        out_dir: str,
        config_path: str | None = None,
        modality: str | None = None,
        epochs: int | None = None,
        resume: bool = False,
        strict: bool = False,
        delegate: bool = False,
    ):
        """Train from Python, through the operator.

        Example::

            import fiftyone as fo
            import fiftyone.operators as foo

            dataset = fo.load_dataset("genres")
            op = foo.get_operator("@fiftyone-genre/genre/train_model")
            op(dataset, "/models/fast", config_path="cpu_fast")
            op(dataset, "/models/paper", config_path="paper_pool", delegate=True)
            op(dataset, "/models/paper", config_path="paper_pool", resume=True, delegate=True)
        """
        return foo.execute_operator(
            self.uri,
            dict(view=sample_collection.view()),
            params={
                "out_dir": str(out_dir),
                "config_path": config_path,
                "modality": modality,
                "epochs": epochs,
                "resume": resume,
                "strict": strict,
            },
            request_delegation=delegate,
        )


OPERATORS = [TrainModel]
