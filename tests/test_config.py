"""Experiment configs: paper defaults, YAML loading, errors that name the file and key."""

from __future__ import annotations

import pytest

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
    from fiftyone_genre.cache import FEATURE_KEY_FIELDS

    names = {f for f in FeaturesConfig.__dataclass_fields__}
    assert set(FEATURE_KEY_FIELDS) <= names
