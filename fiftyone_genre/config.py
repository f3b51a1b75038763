"""One config object per stage, and the experiment YAML that holds them all.

An experiment file (``fiftyone_genre/configs/*.yaml``, or any file of the same shape) has one section per stage::

    features: {backbone: mobilenet_v3_small, fps: 4.0, ...}
    model:    {hidden_size: 256, ...}
    train:    {epochs: 20, ...}
    predict:  {...}
    split:    {...}

Every default lives here, once, and matches the paper unless it says why not.
Files are read with ``yaml.safe_load``; an unknown key, a value of the wrong
type or a value outside its range (:data:`RANGES`) fails with the file, the key
and the allowed range named, before any video is decoded or model loaded.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fiftyone_genre import genres as g


class ConfigError(ValueError):
    """A config file or value is invalid; the message names the file and key."""


@dataclass
class FeaturesConfig:
    """Decoding and CNN feature extraction (paper: 4 fps, InceptionV3 pool)."""

    #: Which features a model reads: "extractor" (this project's CNNs over the
    #: video file, the settings below), "yt8m-video" (YouTube-8M video-level
    #: features stored at import: one 1,152-d step per record) or "yt8m-frame"
    #: (YouTube-8M frame-level features: one step per second). Recorded in the
    #: checkpoint; a model refuses samples of another space.
    space: str = "extractor"
    fps: float = 4.0
    backbone: str = "inception_v3"
    #: "pool" (global-pool vector) or "softmax" (fine-tuned frame classifier probabilities)
    mode: str = "pool"
    #: "DEFAULT" (torchvision weights API), "none" (random init) or a state-dict path
    weights: str = "DEFAULT"
    #: Input side in pixels; None means the backbone's own (299 for InceptionV3).
    image_size: int | None = None
    #: Fine-tuned frame classifier checkpoint, required for mode="softmax".
    softmax_checkpoint: str | None = None
    audio_sample_rate: int = 16000
    n_mels: int = 64
    #: Length of the mel window centred on each sampled frame time (seconds).
    audio_window_s: float = 1.0
    #: Audio CNN: "small_cnn" or a torchvision backbone name (1->3 channels).
    audio_backbone: str = "small_cnn"
    audio_weights: str = "none"
    #: Seed for randomly initialised backbones, so every run and shard agrees.
    init_seed: int = 0
    batch_size: int = 32
    #: Background decode threads feeding the CNN; 0 decodes on the calling
    #: thread between CNN batches. None picks by device (see
    #: ``features.decode_plan_for``: 0 next to CPU CNNs, 1 in front of CUDA).
    num_workers: int | None = None
    #: Decoder threads inside PyAV for each video; None picks them by device
    #: (``features.decode_plan_for``: 1 next to CPU CNNs, 2 in front of CUDA).
    decode_threads: int | None = None
    #: CNN calls running at once on the CPU, each with its share of the torch
    #: threads; None picks by device (``features.cnn_lanes_for``: one lane per
    #: torch thread on CPU, up to 8; 1 on CUDA). Lanes of one thread each keep
    #: every core busy while a video decodes, instead of a multi-threaded CNN
    #: waiting for the decoder or being preempted by it.
    cnn_lanes: int | None = None
    #: Where the per-sample feature files go; None -> <fo.config.default_dataset_dir>/genre_features
    cache_dir: str | None = None
    #: Cache key uses path+size+mtime ("stat") or a content hash ("hash").
    cache_key: str = "stat"
    #: How the CNNs run (``fiftyone_genre.features.engine``): "auto" (= channels_last),
    #: "nchw" (plain eager), "channels_last", "compile" (torch.compile, for long runs).
    engine: str = "auto"
    #: "auto" (bf16 on CPUs with native bf16 and on CUDA, else fp32), "fp32", "bf16", "fp16" (CUDA).
    precision: str = "auto"


@dataclass
class ModelConfig:
    """The audio-visual CNN-LSTM (paper: one wide LSTM of ~2048 units)."""

    #: "fused" | "visual" | "audio"
    modality: str = "fused"
    #: "concat" is the only fusion the paper's design needs; kept as a named choice.
    fusion: str = "concat"
    visual_proj: int = 512
    audio_proj: int = 128
    hidden_size: int = 2048
    num_layers: int = 1
    dropout: float = 0.5
    #: Training-time probability of hiding one modality from a fused model, so
    #: its single-modality predictions (genre_pred_visual/audio) are meaningful.
    modality_dropout: float = 0.2


@dataclass
class TrainConfig:
    """Windows, optimisation and stopping (paper: 40 steps = 10 s at 4 fps)."""

    window: int = 40
    #: Step between training windows; every window of every video is used.
    stride: int = 20
    #: Step between windows at evaluation/prediction time; None = window (no overlap).
    eval_stride: int | None = None
    batch_size: int = 32
    epochs: int = 50
    lr: float = 1e-3
    weight_decay: float = 1e-2
    #: Clip the gradient norm (LSTMs spike early); 0 disables.
    grad_clip: float = 5.0
    #: "cosine" | "plateau" | "none"
    scheduler: str = "cosine"
    #: Early stopping patience in epochs on validation macro-F1 (0 disables).
    patience: int = 8
    seed: int = 0
    #: Class imbalance: "class_weights" | "sampler" | "none"
    balance: str = "class_weights"
    #: Video-level aggregation of window probabilities: "mean" | "length_weighted"
    aggregate: str = "mean"
    num_workers: int = 0
    #: "auto" picks cuda when available.
    device: str = "auto"
    #: Frame-classifier fine-tuning (paper stage 1, for softmax features).
    finetune_epochs: int = 3
    finetune_lr: float = 1e-4


@dataclass
class PredictConfig:
    """Where predictions land on the samples."""

    pred_field: str = g.PRED_FIELD
    timeline_field: str = g.TIMELINE_FIELD
    embedding_field: str = g.EMBEDDING_FIELD
    visual_field: str = g.PRED_VISUAL_FIELD
    audio_field: str = g.PRED_AUDIO_FIELD
    batch_size: int = 64
    device: str = "auto"


@dataclass
class SplitConfig:
    """Group-aware, genre-stratified split (paper: 80/10/10)."""

    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    #: Keep the source dataset's official test fold as our test split.
    keep_official_test: bool = False


@dataclass
class ExperimentConfig:
    """Every stage's section: one file describes a whole experiment."""

    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    split: SplitConfig = field(default_factory=SplitConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, source: str = "<dict>") -> ExperimentConfig:
        return from_dict(cls, data or {}, source)


_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("FeaturesConfig", "space"): ("extractor", "yt8m-video", "yt8m-frame"),
    ("FeaturesConfig", "mode"): ("pool", "softmax"),
    ("FeaturesConfig", "cache_key"): ("stat", "hash"),
    ("FeaturesConfig", "engine"): ("auto", "nchw", "channels_last", "compile"),
    ("FeaturesConfig", "precision"): ("auto", "fp32", "bf16", "fp16"),
    ("ModelConfig", "modality"): ("fused", "visual", "audio"),
    ("ModelConfig", "fusion"): ("concat",),
    ("TrainConfig", "scheduler"): ("cosine", "plateau", "none"),
    ("TrainConfig", "balance"): ("class_weights", "sampler", "none"),
    ("TrainConfig", "aggregate"): ("mean", "length_weighted"),
}


@dataclass(frozen=True)
class Range:
    """Allowed numeric values of one key: ``lo <= v <= hi`` (``lo < v`` when ``open_lo``)."""

    lo: float
    hi: float
    open_lo: bool = False

    def __contains__(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = value > self.lo if self.open_lo else value >= self.lo
        return above and value <= self.hi

    def __str__(self) -> str:
        lo = "(" if self.open_lo else "["
        return f"{lo}{_num(self.lo)}, {_num(self.hi)}]"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


#: Every numeric key's allowed values. Bounds are what the code can honour
#: (the audio CNN needs >= 8 mel bands and >= 8 mel frames = 0.1 s windows; a
#: mel band needs FFT bins: <= 128 bands at 16 kHz) or what keeps a typo from
#: running for hours (fps 1e6, 1000 decode threads).
RANGES: dict[tuple[str, str], Range] = {
    ("FeaturesConfig", "fps"): Range(0, 120, open_lo=True),
    ("FeaturesConfig", "image_size"): Range(32, 1024),
    ("FeaturesConfig", "audio_sample_rate"): Range(8000, 96000),
    ("FeaturesConfig", "n_mels"): Range(8, 128),
    ("FeaturesConfig", "audio_window_s"): Range(0.1, 10.0),
    ("FeaturesConfig", "init_seed"): Range(0, 2**32 - 1),
    ("FeaturesConfig", "batch_size"): Range(1, 4096),
    ("FeaturesConfig", "num_workers"): Range(0, 32),
    ("FeaturesConfig", "decode_threads"): Range(0, 64),
    ("FeaturesConfig", "cnn_lanes"): Range(1, 64),
    ("ModelConfig", "visual_proj"): Range(1, 65536),
    ("ModelConfig", "audio_proj"): Range(1, 65536),
    ("ModelConfig", "hidden_size"): Range(1, 65536),
    ("ModelConfig", "num_layers"): Range(1, 16),
    ("ModelConfig", "dropout"): Range(0, 0.99),
    ("ModelConfig", "modality_dropout"): Range(0, 1),
    ("TrainConfig", "window"): Range(1, 100000),
    ("TrainConfig", "stride"): Range(1, 100000),
    ("TrainConfig", "eval_stride"): Range(1, 100000),
    ("TrainConfig", "batch_size"): Range(1, 65536),
    ("TrainConfig", "epochs"): Range(0, 100000),
    ("TrainConfig", "lr"): Range(0, 10, open_lo=True),
    ("TrainConfig", "weight_decay"): Range(0, 10),
    ("TrainConfig", "grad_clip"): Range(0, 1e6),
    ("TrainConfig", "patience"): Range(0, 100000),
    ("TrainConfig", "num_workers"): Range(0, 32),
    ("TrainConfig", "finetune_epochs"): Range(0, 100000),
    ("TrainConfig", "finetune_lr"): Range(0, 10, open_lo=True),
    ("PredictConfig", "batch_size"): Range(1, 65536),
    ("SplitConfig", "seed"): Range(0, 2**63 - 1),
}

#: A device is spelled auto, cpu, cuda, cuda:N or mps. Whether it exists is
#: checked when a stage starts (``utils.check_device``), before any model is
#: loaded: a config file may name cuda and still be used for a CPU-only step.
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_DEVICE_KEYS = {("TrainConfig", "device"), ("PredictConfig", "device")}


def _check_range(cls: type, name: str, value: Any, where: str) -> None:
    rng = RANGES.get((cls.__name__, name))
    if rng is not None and value is not None and value not in rng:
        raise ConfigError(f"{where}: must be in {rng}, got {value!r}")
    if (cls.__name__, name) in _DEVICE_KEYS and not _DEVICE_RE.match(str(value).lower()):
        raise ConfigError(f"{where}: must be auto, cpu, cuda, cuda:N or mps; got {value!r}")


def check_config(obj: Any, source: str | None = None) -> Any:
    """Range-check every key of a stage config (built in code, not from a file); returns it."""
    cls = type(obj)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass_type(type(value)):
            check_config(value, source)
        else:
            _check_range(cls, f.name, value, f"{source or cls.__name__}: key '{f.name}'")
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    """A plain, YAML/JSON-safe dict (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(obj))


def _check_value(cls: type, name: str, hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check_value(cls, name, inner[0], value, where)
    if is_dataclass_type(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return from_dict(hint, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple) or (args and len(value) != len(args)):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_check_value(cls, name, a, v, where) for a, v in zip(args, value))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if value is None:
            raise ConfigError(f"{where}: expected a string, got null")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        value = str(value)
        choices = _CHOICES.get((cls.__name__, name))
        if choices and value not in choices:
            raise ConfigError(f"{where}: must be one of {', '.join(choices)}; got {value!r}")
        return value
    return value


def is_dataclass_type(obj: Any) -> bool:
    return isinstance(obj, type) and dataclasses.is_dataclass(obj)


def from_dict(cls: type, data: dict[str, Any], source: str = "<dict>") -> Any:
    """Build dataclass ``cls`` from ``data``, naming ``source`` and the key on error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(map(str, unknown))}; "
            f"valid keys are {', '.join(sorted(names))}"
        )
    kwargs = {}
    for k, v in data.items():
        where = f"{source}: key '{k}'"
        kwargs[k] = _check_value(cls, k, hints[k], v, where)
        if not is_dataclass_type(hints[k]):
            _check_range(cls, k, kwargs[k], where)
    return cls(**kwargs)


def load_yaml(path: str | Path) -> Any:
    """``yaml.safe_load`` a file; a parse error names the file and the position."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read file ({e.strerror or e})") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a YAML text file (binary content at byte {e.start})") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: not a YAML text file (binary content: NUL bytes)")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e


#: The experiment configs shipped inside the package (``fiftyone_genre/configs/<name>.yaml``).
CONFIGS_DIR = Path(__file__).resolve().parent / "configs"


def shipped_configs() -> list[str]:
    """Names of the shipped experiment configs, e.g. ``["cpu_fast", "paper_pool", ...]``."""
    return sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))


def resolve_config(name_or_path: str | Path) -> Path:
    """A config given by name (``cpu_fast``) or by file path, as a path that exists.

    Names address the files shipped in the package, so ``--config cpu_fast``
    works from any folder after a plain ``pip install``; an existing file path
    always wins over a name.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    text = str(name_or_path)
    if "/" not in text and "\\" not in text:
        shipped = CONFIGS_DIR / (text if text.endswith(".yaml") else f"{text}.yaml")
        if shipped.is_file():
            return shipped
    if path.exists():
        raise ConfigError(f"{path}: not a file")
    raise ConfigError(
        f"{text}: experiment config not found (neither a file nor a shipped config; "
        f"shipped: {', '.join(shipped_configs())})"
    )


def load_experiment(path: str | Path | None = None, **overrides: Any) -> ExperimentConfig:
    """Load an experiment YAML by name or path (or the defaults when ``path`` is None).

    ``overrides`` are section dicts merged over the file, e.g.
    ``load_experiment(p, train={"epochs": 2})``.
    """
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        path = resolve_config(path)
        source = str(path)
        loaded = load_yaml(path)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: expected a mapping of sections, got {type(loaded).__name__}")
        data = {k: dict(v or {}) if isinstance(v, dict) or v is None else v for k, v in loaded.items()}
    for section, values in overrides.items():
        if values:
            current = data.get(section) or {}
            if not isinstance(current, dict):
                raise ConfigError(
                    f"{source}: section '{section}': expected a mapping of keys, got {type(current).__name__}"
                )
            data[section] = {**current, **values}
    return ExperimentConfig.from_dict(data, source)


def section_from(path: str | Path | None, section: str) -> Any:
    """One stage's section from an experiment file (defaults when ``path`` is None)."""
    return getattr(load_experiment(path), section)
