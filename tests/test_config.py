"""Experiment configs: paper defaults, YAML loading, errors that name the file and key."""

from __future__ import annotations

import re

import pytest
import torch
import yaml

from fiftyone_genre import genres as g
from fiftyone_genre.config import (
    ConfigError,
    ExperimentConfig,
    FeaturesConfig,
    load_experiment,
)


def test_defaults_match_the_paper():
    cfg = load_experiment()
    assert cfg.features.fps == 4.0
    assert cfg.features.backbone == "inception_v3"
    assert cfg.features.mode == "pool"
    assert cfg.train.window == 40  # 10 s at 4 fps
    assert cfg.model.hidden_size == 2048  # the "wide" LSTM
    assert cfg.split.ratios == (0.8, 0.1, 0.1)
    assert g.GENRES == ("Action", "Animation", "Horror", "Romance", "Sports", "Science Fiction")


def test_yaml_sections_and_overrides(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("features:\n  backbone: resnet18\n  fps: 2\ntrain:\n  epochs: 3\nsplit:\n  ratios: [0.7, 0.15, 0.15]\n")
    cfg = load_experiment(p, train={"epochs": 5})
    assert cfg.features.backbone == "resnet18"
    assert cfg.features.fps == 2.0 and isinstance(cfg.features.fps, float)
    assert cfg.train.epochs == 5
    assert cfg.split.ratios == (0.7, 0.15, 0.15)
    # round trip through a plain dict
    again = ExperimentConfig.from_dict(cfg.to_dict())
    assert again == cfg


@pytest.mark.parametrize(
    "text, needle",
    [
        ("train:\n  epocs: 3\n", "epocs"),
        ("train:\n  epochs: three\n", "'epochs'"),
        ("model:\n  modality: both\n", "'modality'"),
        ("bogus_section: {}\n", "bogus_section"),
        ("features: [1, 2]\n", "features"),
        ("train:\n  epochs: [3\n", "not valid YAML"),
    ],
)
def test_errors_name_file_and_key(tmp_path, text, needle):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_experiment(p)
    assert str(p) in str(e.value)
    assert needle in str(e.value)


def test_yaml_is_loaded_safely(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("train: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_experiment(p)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_experiment(tmp_path / "nope.yaml")


def test_feature_defaults_are_named_once():
    # one place: the dataclass; the cache key covers the fields that change numbers
    from fiftyone_genre.features.cache import FEATURE_KEY_FIELDS

    names = {f for f in FeaturesConfig.__dataclass_fields__}
    assert set(FEATURE_KEY_FIELDS) <= names


# --- issue 15, item 2 and 8: every value range-checked at load, naming key and range ----------
@pytest.mark.parametrize(
    "section, key, value, allowed",
    [
        ("features", "fps", ".nan", "(0, 120]"),
        ("features", "fps", ".inf", "(0, 120]"),
        ("features", "fps", "-4", "(0, 120]"),
        ("features", "fps", "1000000", "(0, 120]"),
        ("features", "n_mels", "0", "[8, 128]"),
        ("features", "n_mels", "4", "[8, 128]"),
        ("features", "audio_window_s", "-1", "[0.1, 10]"),
        ("features", "image_size", "8", "[32, 1024]"),
        ("features", "batch_size", "0", "[1, 4096]"),
        ("features", "num_workers", "-1", "[0, 32]"),
        ("features", "num_workers", "1000", "[0, 32]"),
        ("features", "audio_sample_rate", "100", "[8000, 96000]"),
        ("train", "lr", "0", "(0, 10]"),
        ("train", "window", "0", "[1, 100000]"),
        ("model", "dropout", "1.5", "[0, 0.99]"),
        ("predict", "batch_size", "0", "[1, 65536]"),
    ],
)
def test_values_out_of_range_are_refused_at_load_naming_key_and_range(tmp_path, section, key, value, allowed):
    p = tmp_path / "exp.yaml"
    p.write_text(f"{section}:\n  {key}: {value}\n")
    with pytest.raises(ConfigError) as e:
        load_experiment(p)
    msg = str(e.value)
    assert str(p) in msg and f"'{key}'" in msg and allowed in msg, msg
    # the same through an override (what a CLI flag becomes)
    with pytest.raises(ConfigError, match=rf"'{key}'.*{re.escape(allowed)}"):
        load_experiment(None, **{section: {key: yaml.safe_load(value)}})


def test_device_spelling_is_checked_at_load_and_availability_before_a_model(tmp_path):
    from fiftyone_genre.utils import check_device

    p = tmp_path / "exp.yaml"
    p.write_text("train:\n  device: tpu\n")
    with pytest.raises(ConfigError, match=r"'device'.*auto, cpu, cuda"):
        load_experiment(p)
    assert load_experiment(None, predict={"device": "cuda:1"}).predict.device == "cuda:1"  # spelled right
    with pytest.raises(ValueError, match="not a device"):
        check_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            check_device("cuda")
    assert check_device("auto") in ("cpu", "cuda")


def test_configs_built_in_code_are_checked_too():
    from fiftyone_genre.config import check_config

    with pytest.raises(ConfigError, match=r"FeaturesConfig: key 'n_mels': must be in \[8, 128\], got 4"):
        check_config(FeaturesConfig(n_mels=4))
    assert check_config(ExperimentConfig()) == ExperimentConfig()


def test_override_of_a_section_that_is_not_a_mapping_names_it(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("features: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"exp.yaml: section 'features': expected a mapping"):
        load_experiment(p, features={"fps": 2.0})


def test_binary_yaml_is_named(tmp_path):
    p = tmp_path / "weights.yaml"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(ConfigError, match=r"weights.yaml: not a YAML text file"):
        load_experiment(p)
    q = tmp_path / "nul.yaml"
    q.write_bytes(b"features:\n  fps: 4\x00\x00\n")
    with pytest.raises(ConfigError, match=r"nul.yaml: not a YAML text file"):
        load_experiment(q)


# --- issue 25, part 1: each key declared once; checks, flags, form fields and docs derived --------
def _declared_keys():
    from fiftyone_genre.schema import declared, sections

    return [(section, cls, d) for section, cls in sections(ExperimentConfig) for d in declared(cls)]


def test_every_key_is_declared_once_with_help_and_a_default_it_allows():
    import dataclasses

    from fiftyone_genre.schema import check_config, sections

    for section, cls in sections(ExperimentConfig):
        declared = {d.name for s, c, d in _declared_keys() if c is cls}
        assert declared == {f.name for f in dataclasses.fields(cls)}, f"{section}: a key without setting()"
    for section, _, d in _declared_keys():
        assert d.spec.help and "\n" not in d.spec.help, f"{section}.{d.name}: one line of help"
        assert not d.spec.choices or d.default in d.spec.choices, f"{section}.{d.name}"
    check_config(ExperimentConfig())  # every default is inside its own range


def test_reference_tables_are_generated_from_the_declarations():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "settings_table.py"
    spec = importlib.util.spec_from_file_location("settings_table", script)
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    text = table.REFERENCE.read_text(encoding="utf-8")
    assert table.render(text) == text, "docs/reference.md is out of date: run python scripts/settings_table.py"
    for section, _, d in _declared_keys():
        assert f"| `{d.name}` |" in text and d.spec.help in text, f"{section}.{d.name} missing from the docs"


def test_cli_flags_are_made_from_the_declarations(capsys):
    from fiftyone_genre.cli import build_parser
    from fiftyone_genre.cli.flags import config_overrides

    parser = build_parser()
    args = parser.parse_args(["features", "--dataset", "d", "--workers", "2", "--fps", "2", "--engine", "nchw",
                              "--weights", "none", "--backbone", "resnet18"])
    assert config_overrides(args) == {"features": {"num_workers": 2, "fps": 2.0, "engine": "nchw",
                                                   "weights": "none", "backbone": "resnet18"}}
    assert config_overrides(parser.parse_args(["features", "--dataset", "d"])) == {}  # the file's values stay
    args = parser.parse_args(["split", "--dataset", "d", "--seed", "4", "--ratios", "0.7", "0.2", "0.1",
                              "--keep-official-test"])
    assert config_overrides(args) == {"split": {"seed": 4, "ratios": [0.7, 0.2, 0.1], "keep_official_test": True}}
    args = parser.parse_args(["train", "--dataset", "d", "--out", "o", "--epochs", "3", "--modality", "audio"])
    assert config_overrides(args) == {"train": {"epochs": 3}, "model": {"modality": "audio"}}
    with pytest.raises(SystemExit):
        parser.parse_args(["features", "--dataset", "d", "--backbone", "resnet1000"])  # names from backbones
    with pytest.raises(SystemExit):
        parser.parse_args(["features", "--dataset", "d", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for _, _, d in _declared_keys():
        if "features" in d.spec.cli:
            assert d.spec.help in shown, d.name


def test_form_fields_are_made_from_the_declarations(tmp_path):
    from types import SimpleNamespace

    from operators.common import Form
    from operators.settings import add_setting_inputs, setting_overrides

    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    params = {"backbone": "resnet18", "weights": "path", "weights_path": str(weights), "image_size": 64.0,
              "cache_dir": "", "fps": 1.0}
    form = Form(SimpleNamespace(params=params))
    add_setting_inputs(form, FeaturesConfig, FeaturesConfig(image_size=96))
    fields = form.inputs.properties
    on_form = {d.name for _, cls, d in _declared_keys() if cls is FeaturesConfig and d.spec.form}
    assert {"backbone", "weights", "image_size", "cache_dir"} <= on_form
    assert set(fields) == on_form | {"weights_path"}  # the file field of weights: "path"
    assert fields["image_size"].default == 96 and fields["backbone"].default == "inception_v3"
    assert fields["image_size"].view.label == "Image size (optional)"
    assert fields["image_size"].view.description.startswith("input side in pixels")  # the key's help
    assert form.valid
    overrides = setting_overrides(params, FeaturesConfig)
    assert overrides == {"backbone": "resnet18", "weights": str(weights), "image_size": 64}  # fps: not a form field
    assert load_experiment(None, features=overrides).features.image_size == 64
