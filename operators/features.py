"""App operator ``extract_features``: the feature stage as a form, delegated by default.

Feature extraction decodes every video and runs two CNNs, which outlives the
App's immediate-execution timeout on any real dataset, so delegated execution
is offered and pre-selected (``make app`` runs an executor); immediate runs
stay possible for a quick try on a few selected samples.
"""

from __future__ import annotations

import fiftyone.operators as foo
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
    long_run_config,
    progress_fn,
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
        shard_problem = str(e)
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
        return {"report": f"```\n{report}\n```", **report.to_dict()}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("report", label="Feature extraction", view=types.MarkdownView())
        return types.Property(outputs)

    def __call__(
        self, sample_collection, config_path: str | None = None, backbone: str | None = None,
        weights: str | None = None, image_size: int | None = None, device: str = "auto",
        cache_dir: str | None = None, shard: str | None = None, strict: bool = False, delegate: bool = False,
    ):
        """Extract features from Python, through the operator.

        Example::

            op = foo.get_operator("@fiftyone-genre/genre/extract_features")
            op(dataset, backbone="mobilenet_v3_small", weights="none", device="cpu")
            op(dataset, config_path="paper_pool", delegate=True)  # queue it

        ``weights`` is ``"DEFAULT"``, ``"none"`` or a state-dict path. Settings
        left as None come from ``config_path`` (else the dataset's last run, else defaults).
        """
        params = {"config_path": config_path, "backbone": backbone, "image_size": image_size, "device": device,
                  "cache_dir": cache_dir, "shard": shard, "strict": strict}
        if weights is None or weights in ("DEFAULT", "none"):
            params["weights"] = weights
        else:
            params.update(weights="path", weights_path=str(weights))
        return foo.execute_operator(
            self.uri, dict(view=sample_collection.view()), params=params, request_delegation=delegate
        )


OPERATORS = [ExtractFeatures]
