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
    progress_fn,
    report_view,
)
from .settings import add_setting_inputs, setting_overrides

DEVICES = ("cpu", "cuda", "auto")


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


def features_config(ctx):
    """The FeaturesConfig the form describes: the YAML (else the dataset's recorded one) + the form."""
    from fiftyone_genre.config import FeaturesConfig, load_experiment

    params = ctx.params or {}
    config_path = expand_path(params.get("config_path"))
    base = {} if config_path else _recorded(ctx)
    return load_experiment(config_path, features={**base, **setting_overrides(params, FeaturesConfig)}).features


def _base_config(ctx, experiment):
    from fiftyone_genre.config import FeaturesConfig, from_dict

    if experiment is not None:
        return experiment.features
    try:
        return from_dict(FeaturesConfig, _recorded(ctx), "dataset.info") if _recorded(ctx) else FeaturesConfig()
    except (ValueError, TypeError):
        return FeaturesConfig()


def build_features_form(form: Form) -> None:
    from fiftyone_genre.config import ConfigError, FeaturesConfig
    from fiftyone_genre.features.extract import parse_shard

    ctx, p = form.ctx, form.params
    add_view_target(ctx, form.inputs, action="Extract features for")
    experiment = config_field(form, "Experiment config (optional)",
                              "Its features section gives the defaults below (the same config training uses).")
    add_setting_inputs(form, FeaturesConfig, _base_config(ctx, experiment))  # backbone, weights, size, cache
    form.inputs.enum("device", list(DEVICES), default="auto", label="Device", view=types.DropdownView(),
                     description="auto uses a GPU when the server has one")
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
