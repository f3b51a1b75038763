"""App operator ``extract_features``: the feature stage as a form, delegated by default.

Feature extraction decodes every video and runs two CNNs, which outlives the
App's immediate-execution timeout on any real dataset, so delegated execution
is offered and pre-selected (``make app`` runs an executor); immediate runs
stay possible for a quick try on a few selected samples.
"""

from __future__ import annotations

import fiftyone.operators.types as types

from fiftyone_genre import genres as g

from .common import (
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
    path_problem,
    progress_fn,
    report_view,
)

WEIGHT_CHOICES = (
    ("DEFAULT", "Pretrained (torchvision DEFAULT; downloaded once, needs network the first time)"),
    ("none", "Random init (seeded: every run and shard computes the same features)"),
    ("path", "Local state dict file"),
)
DEVICES = ("cpu", "cuda", "auto")


def _backbones() -> list[str]:
    from fiftyone_genre.features.backbones import VISUAL_BACKBONES

    return list(VISUAL_BACKBONES)


def _recorded(ctx) -> dict:
    """The feature settings this dataset was last extracted with (its form defaults).

    Only keys today's FeaturesConfig knows are kept, so a record from an older
    version still gives defaults instead of an error.
    """
    import dataclasses

    from fiftyone_genre.config import FeaturesConfig

    known = {f.name for f in dataclasses.fields(FeaturesConfig)}
    recorded = dataset_info(ctx, g.FEATURES_INFO_KEY).get("config") or {}
    return {k: v for k, v in recorded.items() if k in known}


def _overrides(params: dict) -> dict:
    """The form's choices as a features section (empty fields keep the base's values)."""
    overrides: dict = {}
    if params.get("backbone"):
        overrides["backbone"] = params["backbone"]
    weights = params.get("weights")
    if weights == "path":
        overrides["weights"] = expand_path(params.get("weights_path"))
    elif weights:
        overrides["weights"] = weights
    if params.get("image_size"):
        overrides["image_size"] = int(params["image_size"])
    if params.get("cache_dir"):
        overrides["cache_dir"] = expand_path(params["cache_dir"])
    return overrides


def features_config(ctx):
    """The FeaturesConfig the form describes: the YAML (else the dataset's recorded one) + the form."""
    from fiftyone_genre.config import load_experiment

    params = ctx.params or {}
    config_path = expand_path(params.get("config_path"))
    base = {} if config_path else _recorded(ctx)
    return load_experiment(config_path, features={**base, **_overrides(params)}).features


def _base_config(ctx, experiment):
    from fiftyone_genre.config import FeaturesConfig, from_dict

    if experiment is not None:
        return experiment.features
    try:
        return from_dict(FeaturesConfig, _recorded(ctx), "dataset.info") if _recorded(ctx) else FeaturesConfig()
    except (ValueError, TypeError):
        return FeaturesConfig()


def _model_fields(form: Form, base) -> None:
    """Backbone, weights and image size, defaulting to ``base`` (config file or recorded run)."""
    inputs = form.inputs
    inputs.enum("backbone", _backbones(), default=base.backbone, label="Visual backbone", view=types.DropdownView(),
                description="inception_v3 is the paper's (299 px, 2048-d); mobilenet_v3_small is ~20x faster on CPU.")
    base_weights = base.weights if base.weights in ("DEFAULT", "none") else "path"
    weights = types.RadioGroup()
    for value, label in WEIGHT_CHOICES:
        weights.add_choice(value, label=label)
    inputs.enum("weights", weights.values(), default=base_weights, label="Weights",
                description="Where the backbone's weights come from", view=types.RadioView(choices=weights.choices))
    if form.params.get("weights", base_weights) == "path":
        form.field("str", "weights_path", path_problem(form.params.get("weights_path"), must_be_file=True),
                   required=True, default=None if base_weights != "path" else base.weights,
                   label="State dict path", description="A .pth state dict on the server machine.")
    inputs.int("image_size", default=base.image_size, label="Image size (optional)",
               description="Input side in pixels; empty = the backbone's own.")


def build_features_form(form: Form) -> None:
    from fiftyone_genre.config import ConfigError
    from fiftyone_genre.features.extract import parse_shard

    ctx, p = form.ctx, form.params
    add_view_target(ctx, form.inputs, action="Extract features for")
    experiment = config_field(form, "Experiment config (optional)",
                              "Its features section gives the defaults below (the same config training uses).")
    base = _base_config(ctx, experiment)
    _model_fields(form, base)
    form.inputs.enum("device", list(DEVICES), default="auto", label="Device", view=types.DropdownView(),
                     description="auto uses a GPU when the server has one")
    form.field("str", "cache_dir", output_dir_problem(p.get("cache_dir")), label="Cache folder (optional)",
               description="Default: the folder this dataset used before, else FiftyOne's dataset dir.")
    shard_problem = None
    try:
        parse_shard(p.get("shard") or None)
    except ValueError as e:
        shard_problem = str(e).removeprefix("shard ")  # the field's name says it
    form.field("str", "shard", shard_problem, label="Shard K/N (optional)",
               description="Run N delegated operations with 1/N ... N/N to split the work.")
    form.inputs.bool("strict", default=False, label="Strict",
                     description="Fail the run if any video fails (default: record and continue).")
    if not form.valid:
        return
    try:
        cfg = features_config(ctx)
    except (ConfigError, ValueError) as e:
        form.block("config_error", str(e).splitlines()[0])
        return
    if cfg.cache_dir and not p.get("cache_dir") and (problem := output_dir_problem(cfg.cache_dir)):
        form.block("cache_error", f"Cache folder from the config: {problem}.", "Type a cache folder the server can write.")
        return
    n = len(ctx.target_view())
    if n == 0:
        form.block("empty_error", "No samples in the chosen target.")
        return
    form.notice("plan", f"{n} video(s) at {cfg.fps:g} fps through {cfg.backbone} ({cfg.mode}, weights {cfg.weights}).",
                "Already cached videos are skipped; failures are recorded in genre_errors. Runs delegated by default.")


class ExtractFeatures(LongRunOperator):
    @property
    def config(self):
        return long_run_config(
            "extract_features",
            "Genre: extract audio-visual features",
            "Decode videos once (frames at 4 fps + log-mel audio) and cache CNN features",
            icon="graphic_eq",
        )

    form_builder = staticmethod(build_features_form)
    form_title = "Extract genre features"

    def execute(self, ctx):
        from fiftyone_genre.features.extract import extract_features
        from fiftyone_genre.utils import resolve_device

        self.checked_form(ctx)
        report = extract_features(
            ctx.target_view(), features_config(ctx), device=str(resolve_device(ctx.params.get("device") or "auto")),
            shard=ctx.params.get("shard") or None, progress=progress_fn(ctx),
            strict=bool(ctx.params.get("strict", False)),
        )
        finish(ctx, report, variant="warning" if report.failed else "success")
        return {"report": f"```\n{report}\n```", "headline": headline(report), **report.to_dict()}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("report", label="Feature extraction", view=report_view())
        return finished(outputs, "Feature extraction")

    def sdk_params(self, sample_collection, params: dict) -> dict:
        """``weights=`` "DEFAULT", "none" or a state-dict path -> the form's weights fields.

        Example::

            op = foo.get_operator("@fiftyone-genre/genre/extract_features")
            op(dataset, backbone="mobilenet_v3_small", weights="none", device="cpu")
            op(dataset, config_path="paper_pool", delegate=True)  # queue it

        Settings left out come from ``config_path`` (else the dataset's last run, else defaults).
        """
        params = dict(params)
        weights = params.get("weights")
        if weights is not None and weights not in ("DEFAULT", "none", "path"):
            params.update(weights="path", weights_path=str(weights))
        return params


OPERATORS = [ExtractFeatures]
