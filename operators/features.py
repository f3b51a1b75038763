"""App operator ``extract_features``: the feature stage as a form, delegated by default.

Feature extraction decodes every video and runs two CNNs, which outlives the
App's immediate-execution timeout on any real dataset, so delegated execution
is offered and pre-selected; immediate runs stay possible for a quick try on a
few selected samples.
"""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from .common import (
    add_view_target,
    as_code_block,
    check_path,
    expand_path,
    form_error,
    form_notice,
    notify_done,
    progress_fn,
    target_view,
)

WEIGHT_CHOICES = (
    ("DEFAULT", "Pretrained (torchvision DEFAULT; downloaded once, needs network the first time)"),
    ("none", "Random init (seeded: every run and shard computes the same features)"),
    ("path", "Local state dict file"),
)
DEVICES = ("cpu", "cuda", "auto")


def _backbones() -> list[str]:
    from fiftyone_genre.backbones import VISUAL_BACKBONES

    return list(VISUAL_BACKBONES)


def _features_config(params: dict):
    """The FeaturesConfig the form describes: the YAML's section with the form's choices on top."""
    from fiftyone_genre.config import load_experiment

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
    return load_experiment(expand_path(params.get("config_path")), features=overrides).features


def build_features_form(ctx, inputs: types.Object) -> bool:
    """Fill ``inputs``; returns whether the form is valid."""
    from fiftyone_genre.config import ConfigError, FeaturesConfig, load_experiment
    from fiftyone_genre.features import parse_shard

    valid = True
    add_view_target(ctx, inputs, action="Extract features for")
    inputs.str(
        "config_path",
        label="Experiment config (optional)",
        description="A shipped config name (cpu_fast, paper_pool, paper_softmax) or a YAML file; its features section gives the defaults below (the same config training uses).",
    )
    base = None  # the YAML's features section gives the form's defaults
    if ctx.params.get("config_path"):
        try:
            base = load_experiment(expand_path(ctx.params["config_path"])).features
        except (ConfigError, ValueError) as e:
            form_error(inputs, "config_error", str(e))
            return False
    base = base or FeaturesConfig()
    base_weights = base.weights if base.weights in ("DEFAULT", "none") else "path"

    inputs.enum(
        "backbone",
        _backbones(),
        default=base.backbone,
        label="Visual backbone",
        description="inception_v3 is the paper's (299 px, 2048-d); mobilenet_v3_small is ~20x faster on CPU.",
        view=types.DropdownView(),
    )
    weights = types.RadioGroup()
    for value, label in WEIGHT_CHOICES:
        weights.add_choice(value, label=label)
    inputs.enum("weights", weights.values(), default=base_weights, label="Weights", view=types.RadioView(choices=weights.choices))
    if ctx.params.get("weights", base_weights) == "path":
        inputs.str(
            "weights_path",
            required=True,
            default=None if base_weights != "path" else base.weights,
            label="State dict path",
            description="A .pth state dict on the server machine.",
        )
        if not check_path(inputs, ctx, "weights_path", must_be_file=True):
            valid = False
    inputs.int("image_size", label="Image size (optional)", description="Input side in pixels; empty = the backbone's own.")
    inputs.enum("device", list(DEVICES), default="auto", label="Device", view=types.DropdownView())
    inputs.str(
        "cache_dir",
        label="Cache folder (optional)",
        description="Default: the folder this dataset used before, else FiftyOne's dataset dir.",
    )
    inputs.str("shard", label="Shard K/N (optional)", description="Run N delegated operations with 1/N ... N/N to split the work.")
    inputs.bool("strict", default=False, label="Strict", description="Fail the run if any video fails (default: record and continue).")

    if ctx.params.get("shard"):
        try:
            parse_shard(ctx.params["shard"])
        except ValueError as e:
            form_error(inputs, "shard_error", str(e))
            valid = False
    if valid:
        try:
            cfg = _features_config(ctx.params)
        except (ConfigError, ValueError) as e:
            form_error(inputs, "config_error", str(e))
            return False
        n = len(target_view(ctx))
        form_notice(
            inputs,
            "plan",
            f"{n} video(s) at {cfg.fps:g} fps through {cfg.backbone} ({cfg.mode}, weights {cfg.weights}).",
            "Already cached videos are skipped; failures are recorded in genre_errors.",
        )
        if n == 0:
            form_error(inputs, "empty_error", "No samples in the chosen target.")
            valid = False
    return valid


class ExtractFeatures(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="extract_features",
            label="Genre: extract audio-visual features",
            description="Decode videos once (frames at 4 fps + log-mel audio) and cache CNN features",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
            default_choice_to_delegated=True,
            icon="graphic_eq",
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        build_features_form(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Extract genre features"))

    def resolve_delegation(self, ctx):
        # None lets the user choose; the config pre-selects delegation.
        return None

    def execute(self, ctx):
        from fiftyone_genre.features import extract_features

        config = _features_config(ctx.params)
        report = extract_features(
            target_view(ctx),
            config,
            device=_device(ctx.params.get("device", "auto")),
            shard=ctx.params.get("shard") or None,
            progress=progress_fn(ctx),
            strict=bool(ctx.params.get("strict", False)),
        )
        notify_done(ctx, report, variant="warning" if report.failed else "success")
        if not ctx.delegated:
            ctx.ops.reload_dataset()
        return {"report": as_code_block(report), **report.to_dict()}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("report", label="Feature extraction", view=types.MarkdownView())
        return types.Property(outputs)

    def __call__(
        self,
        sample_collection,
        config_path: str | None = None,
        backbone: str | None = None,
        weights: str | None = None,
        image_size: int | None = None,
        device: str = "auto",
        cache_dir: str | None = None,
        shard: str | None = None,
        strict: bool = False,
        delegate: bool = False,
    ):
        """Extract features from Python, through the operator.

        Example::

            import fiftyone as fo
            import fiftyone.operators as foo

            dataset = fo.load_dataset("genres")
            op = foo.get_operator("@fiftyone-genre/genre/extract_features")
            op(dataset, backbone="mobilenet_v3_small", weights="none", device="cpu")
            op(dataset, config_path="paper_pool", delegate=True)  # queue it

        ``weights`` is ``"DEFAULT"``, ``"none"`` or a state-dict path. Settings
        left as None come from ``config_path`` (else the FeaturesConfig defaults).
        """
        params = {
            "config_path": config_path,
            "backbone": backbone,
            "image_size": image_size,
            "device": device,
            "cache_dir": cache_dir,
            "shard": shard,
            "strict": strict,
        }
        if weights is None or weights in ("DEFAULT", "none"):
            params["weights"] = weights
        else:
            params.update(weights="path", weights_path=str(weights))
        return foo.execute_operator(
            self.uri,
            dict(view=sample_collection.view()),
            params=params,
            request_delegation=delegate,
        )


def _device(value: str) -> str:
    from fiftyone_genre.model import resolve_device

    return str(resolve_device(value or "auto"))


OPERATORS = [ExtractFeatures]
