"""One config object per stage, and the experiment YAML that holds them all.

An experiment file (``fiftyone_genre/configs/*.yaml``, or any file of the same shape) has one section per stage::

    features: {backbone: mobilenet_v3_small, fps: 4.0, ...}
    model:    {hidden_size: 256, ...}
    train:    {epochs: 20, ...}
    predict:  {...}
    split:    {...}

Each key is declared once, here, with :func:`~fiftyone_genre.schema.setting`:
its default (the paper's unless it says why not), a one-line help, its allowed
values and where else it appears (a CLI flag, an App form field). Validation,
the flags, the form fields and the settings table of ``docs/reference.md`` are
all derived from these declarations (:mod:`fiftyone_genre.schema`), so adding
a key means adding one field here. Files are read with ``yaml.safe_load``; an
unknown key, a value of the wrong type or a value outside its range fails with
the file, the key and the allowed values named, before any video is decoded or
model loaded.

Ranges are what the code can honour (the audio CNN needs >= 8 mel bands and
>= 8 mel frames = 0.1 s windows; a mel band needs FFT bins: <= 128 bands at
16 kHz) or what keeps a typo from running for hours (fps 1e6, 1000 decode
threads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fiftyone_genre import genres as g
from fiftyone_genre.schema import (  # noqa: F401 - the config API lives here for callers
    ConfigError,
    Range,
    check_config,
    from_dict,
    is_dataclass_type,
    setting,
    to_dict,
)

#: Commands that take a features flag (fine-tuning reads the visual settings only).
_BOTH = ("features", "finetune-frames")
_VISUAL = "fiftyone_genre.features.backbones:VISUAL_BACKBONES"
_AUDIO = "fiftyone_genre.features.backbones:AUDIO_BACKBONES"
_SIZE = Range(1, 65536)
_STEPS = Range(1, 100000)
_COUNT = Range(0, 100000)


@dataclass
class FeaturesConfig:
    """Decoding and CNN feature extraction (paper: 4 fps, InceptionV3 pool)."""

    # Recorded in the checkpoint: a model refuses samples of another space
    # (fiftyone_genre.features.spaces). Not in the cache key: only the extractor
    # space has a per-clip cache.
    space: str = setting(
        "extractor", "which features a model reads: extractor (this project's CNNs over the video "
        "file, the keys below), yt8m-video (YouTube-8M video-level features stored by the import, one "
        "step per record) or yt8m-frame (YouTube-8M frame-level features, one step per second)",
        choices=("extractor", "yt8m-video", "yt8m-frame"))
    fps: float = setting(4.0, "steps sampled per second of video", range=Range(0, 120, open_lo=True),
                         cli=_BOTH, in_cache_key=True)
    backbone: str = setting(
        "inception_v3", "the visual CNN: inception_v3 is the paper's (299 px, 2048-d); "
        "mobilenet_v3_small is ~20x faster on CPU", names_from=_VISUAL, cli=_BOTH, metavar="NAME",
        form="Visual backbone", in_cache_key=True)
    mode: str = setting(
        "pool", "the visual feature: the CNN's global-pool vector, or the fine-tuned frame "
        "classifier's genre probabilities (paper stage 1)", choices=("pool", "softmax"), cli=("features",),
        in_cache_key=True)
    weights: str = setting(
        "DEFAULT", "the visual CNN's weights: DEFAULT (torchvision's pretrained, downloaded once "
        "under TORCH_HOME), none (random, seeded by init_seed) or a state-dict file",
        presets=(("DEFAULT", "Pretrained (torchvision DEFAULT; downloaded once, needs network the first time)"),
                 ("none", "Random init (seeded: every run and shard computes the same features)")),
        path="file", cli=_BOTH, form="Weights", in_cache_key=True)
    image_size: int | None = setting(
        None, "input side in pixels; unset: the backbone's own (299 for inception_v3)",
        range=Range(32, 1024), cli=_BOTH, form="Image size", in_cache_key=True)
    softmax_checkpoint: str | None = setting(
        None, "the fine-tuned frame classifier (best.pt from finetune-frames), required for mode softmax",
        path="file", cli=("features",), in_cache_key=True)
    audio_sample_rate: int = setting(16000, "audio resampling rate in Hz", range=Range(8000, 96000),
                                     in_cache_key=True)
    n_mels: int = setting(64, "mel bands of the audio features", range=Range(8, 128), in_cache_key=True)
    audio_window_s: float = setting(
        1.0, "length in seconds of the mel window centred on each step", range=Range(0.1, 10.0),
        in_cache_key=True)
    audio_backbone: str = setting(
        "small_cnn", "the audio CNN: small_cnn or a torchvision backbone (fed the mel image as 3 channels)",
        names_from=_AUDIO, cli=("features",), metavar="NAME", in_cache_key=True)
    audio_weights: str = setting(
        "none", "the audio CNN's weights: none (random, seeded by init_seed), DEFAULT (torchvision "
        "backbones only) or a state-dict file", in_cache_key=True)
    init_seed: int = setting(
        0, "seed of randomly initialised CNNs, so every run and shard computes the same features",
        range=Range(0, 2**32 - 1), in_cache_key=True)
    batch_size: int = setting(32, "frames per CNN batch", range=Range(1, 4096), cli=_BOTH)
    num_workers: int | None = setting(
        None, "background decode threads feeding the CNN (0: decode between CNN batches); "
        "unset: 0 next to CPU CNNs, 1 in front of CUDA", range=Range(0, 32), cli=("features",),
        flag="--workers")
    decode_threads: int | None = setting(
        None, "PyAV decoder threads per video; unset: 1 next to CPU CNNs, 2 in front of CUDA", range=Range(0, 64))
    # Lanes of one thread each keep every core busy while a video decodes,
    # instead of a multi-threaded CNN waiting for the decoder or being preempted by it.
    cnn_lanes: int | None = setting(
        None, "CNN calls running at once, each with its share of the torch threads; "
        "unset: one per torch thread (up to 8) on CPU, 1 on CUDA", range=Range(1, 64))
    cache_dir: str | None = setting(
        None, "the feature cache folder; unset: the folder this dataset used before, "
        "else <FiftyOne dataset dir>/genre_features", path="folder", cli=_BOTH, form="Cache folder")
    cache_key: str = setting(
        "stat", "what identifies a video in the cache: stat (path, size, mtime) or hash (its content)",
        choices=("stat", "hash"))
    engine: str = setting(
        "auto", "how the CNNs run: auto (= channels_last), nchw (plain eager), channels_last, "
        "or compile (torch.compile, for long runs)", choices=("auto", "nchw", "channels_last", "compile"),
        cli=("features",), in_cache_key=True)
    precision: str = setting(
        "auto", "CNN arithmetic: auto (bf16 where the hardware has it, else fp16 on CUDA, else fp32), "
        "fp32, bf16 or fp16 (CUDA only)", choices=("auto", "fp32", "bf16", "fp16"), cli=("features",),
        in_cache_key=True)


@dataclass
class ModelConfig:
    """The audio-visual CNN-LSTM (paper: one wide LSTM of ~2048 units)."""

    modality: str = setting(
        "fused", "the features the model reads: fused (both), visual or audio",
        choices=("fused", "visual", "audio"), cli=("train",))
    fusion: str = setting("concat", "how the two streams join (concat, the paper's, is the only one)",
                          choices=("concat",))
    visual_proj: int = setting(512, "width of the visual projection before the LSTM", range=_SIZE)
    audio_proj: int = setting(128, "width of the audio projection before the LSTM", range=_SIZE)
    hidden_size: int = setting(2048, "LSTM units (the paper's wide LSTM: 2048)", range=_SIZE)
    num_layers: int = setting(1, "stacked LSTM layers", range=Range(1, 16))
    dropout: float = setting(0.5, "dropout before the classifier", range=Range(0, 0.99))
    modality_dropout: float = setting(
        0.2, "training-time chance of hiding one modality from a fused model, so its visual-only "
        "and audio-only predictions mean something", range=Range(0, 1))


@dataclass
class TrainConfig:
    """Windows, optimisation and stopping (paper: 40 steps = 10 s at 4 fps)."""

    window: int = setting(40, "steps per window (40 = 10 s at 4 fps)", range=_STEPS)
    stride: int = setting(20, "step between training windows; every window of every video is used", range=_STEPS)
    eval_stride: int | None = setting(
        None, "step between windows for val, test and prediction; unset: window (no overlap)", range=_STEPS)
    batch_size: int = setting(32, "windows per training batch", range=_SIZE)
    epochs: int = setting(50, "training epochs", range=_COUNT, cli=("train", "ablate"))
    lr: float = setting(1e-3, "AdamW learning rate", range=Range(0, 10, open_lo=True))
    weight_decay: float = setting(1e-2, "AdamW weight decay", range=Range(0, 10))
    grad_clip: float = setting(5.0, "gradient-norm clip (LSTMs spike early); 0 disables", range=Range(0, 1e6))
    scheduler: str = setting("cosine", "learning-rate schedule: cosine, plateau (on val macro-F1) or none",
                             choices=("cosine", "plateau", "none"))
    patience: int = setting(
        8, "early stopping after this many epochs without a better val macro-F1; 0 never stops early",
        range=_COUNT)
    seed: int = setting(0, "seed of initialisation, shuffling and dropout")
    balance: str = setting(
        "class_weights", "class imbalance: class_weights (inverse-frequency loss weights), "
        "sampler (class-balanced draws) or none", choices=("class_weights", "sampler", "none"))
    aggregate: str = setting("mean", "a video's score from its windows' probabilities: mean or length_weighted",
                             choices=("mean", "length_weighted"))
    num_workers: int = setting(0, "DataLoader worker processes", range=Range(0, 32))
    device: str = setting("auto", "where training runs; auto picks cuda when available", device=True)
    finetune_epochs: int = setting(
        3, "epochs of frame-classifier fine-tuning (paper stage 1, for softmax features)", range=_COUNT)
    finetune_lr: float = setting(1e-4, "learning rate of frame-classifier fine-tuning",
                                 range=Range(0, 10, open_lo=True))


@dataclass
class PredictConfig:
    """Where predictions land on the samples."""

    pred_field: str = setting(g.PRED_FIELD, "field for the video-level genre")
    timeline_field: str = setting(g.TIMELINE_FIELD, "field for the genre timeline (one genre per slot)")
    embedding_field: str = setting(g.EMBEDDING_FIELD, "field for the clip embedding (maps, similarity)")
    visual_field: str = setting(g.PRED_VISUAL_FIELD, "field for a fused model's visual-only prediction")
    audio_field: str = setting(g.PRED_AUDIO_FIELD, "field for a fused model's audio-only prediction")
    timeline_slot_s: float = setting(
        2.5, "longest stretch of video (seconds) one timeline entry covers; windows are also scored every slot",
        range=Range(0, 3600, open_lo=True), cli=("predict", "classify"), flag="--slot", metavar="SECONDS")
    batch_size: int = setting(64, "windows per forward pass", range=_SIZE)
    device: str = setting("auto", "where prediction runs; auto picks cuda when available", device=True)


@dataclass
class SplitConfig:
    """Group-aware, genre-stratified split (paper: 80/10/10)."""

    ratios: tuple[float, float, float] = setting(
        (0.8, 0.1, 0.1), "train, val and test shares (>= 0, train > 0; scaled to sum to 1)",
        cli=("split",), metavar=("TRAIN", "VAL", "TEST"))
    seed: int = setting(0, "seed of the group shuffle", range=Range(0, 2**63 - 1), cli=("split",))
    keep_official_test: bool = setting(
        False, "keep the source dataset's official test fold as the test split", cli=("split",))


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
