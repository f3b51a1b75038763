"""Frame and spectrogram CNNs by name, their weights, and the paper's stage-1 fine-tuning.

Visual backbones (torchvision's classifiers; InceptionV3 in
:mod:`fiftyone_genre.features.inception`, layer for layer the same) turn a ``uint8`` frame into either the
global-pool vector (``mode="pool"``; 2048-d for InceptionV3, the paper's
default) or the genre probabilities of a frame classifier fine-tuned on the
training split (``mode="softmax"``, the paper's stage 1, see
:mod:`fiftyone_genre.modeling.finetune`).

Weights are one of:

* ``"DEFAULT"``: torchvision's recommended ImageNet weights, downloaded once
  and cached under ``$TORCH_HOME/hub/checkpoints``;
* a path to a local state dict (loaded with ``weights_only=True``);
* ``"none"``: random init, seeded with ``init_seed`` so that every run, shard
  and machine computes identical features (the cache key relies on it).

The audio CNN reads normalised log-mel windows ``[m, 1, n_mels, F]``. The
default ``small_cnn`` pools over *time only* and keeps coarse frequency bins:
a genre's sound is largely *where* its energy sits in frequency, and a
global-average-pooled random CNN would throw exactly that away.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHT_CHOICES_HELP = "--weights DEFAULT|PATH|none"


class WeightsError(ValueError):
    """Weights cannot be resolved; the message names the options."""


@dataclass(frozen=True)
class BackboneSpec:
    """What we need to know about a torchvision classifier to use it as a feature CNN."""

    default_size: int
    feature_dim: int
    head: str  # attribute holding the classifier head, replaced by Identity
    min_size: int = 32


VISUAL_BACKBONES: dict[str, BackboneSpec] = {
    "inception_v3": BackboneSpec(299, 2048, "fc", min_size=75),
    "mobilenet_v3_small": BackboneSpec(224, 576, "classifier"),
    "mobilenet_v3_large": BackboneSpec(224, 960, "classifier"),
    "resnet18": BackboneSpec(224, 512, "fc"),
    "resnet50": BackboneSpec(224, 2048, "fc"),
    "efficientnet_b0": BackboneSpec(224, 1280, "classifier"),
}
AUDIO_BACKBONES: tuple[str, ...] = ("small_cnn", *VISUAL_BACKBONES)
HEAD_PREFIXES = ("fc.", "classifier.", "AuxLogits.")


def spec_for(name: str) -> BackboneSpec:
    try:
        return VISUAL_BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; choose one of {', '.join(VISUAL_BACKBONES)}"
        ) from None


def image_size_for(name: str, image_size: int | None = None) -> int:
    """The input side: the configured one, else the backbone's own (299 for InceptionV3)."""
    spec = spec_for(name)
    size = int(image_size or spec.default_size)
    if size < spec.min_size:
        raise ValueError(f"{name} needs image_size >= {spec.min_size}, got {size}")
    return size


# --- weights -----------------------------------------------------------------
def _seeded(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """Build a module under a fixed seed without disturbing the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = random.getstate(), np.random.get_state()
        random.seed(seed)
        np.random.seed(seed % (2**32))
        try:
            return build()
        finally:
            random.setstate(state[0])
            np.random.set_state(state[1])


def _unwrap_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """Accept a bare state dict or the usual wrappers ({"state_dict": ...}, {"model": ...})."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{source}: not a state dict (expected a mapping of parameter names to tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A local state dict, loaded safely (``weights_only=True``: tensors and plain values only)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"weights file not found: {path}. Use {WEIGHT_CHOICES_HELP} "
            "(DEFAULT = torchvision download, PATH = local state dict, none = random init)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling problem is a bad file
        raise WeightsError(f"{path}: cannot load as a state dict ({e})") from e
    return _unwrap_state_dict(obj, str(path))


def download_state_dict(name: str) -> dict[str, torch.Tensor]:
    """torchvision's DEFAULT weights for ``name``: from the TORCH_HOME cache, else downloaded.

    Offline and not cached is the common failure; it gets one message that
    names the three ways forward instead of a urllib traceback.
    """
    from torchvision.models import get_model_weights

    weights = get_model_weights(name).DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    try:
        return torch.hub.load_state_dict_from_url(weights.url, progress=True, check_hash=True, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - URLError, socket errors, HTTP errors, hash mismatch...
        raise WeightsError(
            f"cannot get the pretrained '{name}' weights ({weights}): not cached at {cached} and the "
            f"download from {weights.url} failed ({type(e).__name__}: {e}). Choose one of: "
            f"--weights DEFAULT with network access once (then cached in {cached.parent}, set TORCH_HOME to move it), "
            "--weights PATH to a local state dict (.pth), or --weights none for random init "
            "(seeded by init_seed)."
        ) from e


def resolve_weights(name: str, weights: str | None) -> dict[str, torch.Tensor] | None:
    """``"DEFAULT"`` -> torchvision weights, a path -> that state dict, ``"none"`` -> None."""
    if weights is None or str(weights).lower() in ("none", "", "random"):
        return None
    if str(weights).upper() == "DEFAULT":
        return download_state_dict(name)
    return load_state_dict_file(weights)


def _construct(name: str, pretrained_layout: bool, num_classes: int = 1000) -> nn.Module:
    """The classifier ``name`` with torchvision's layer names; InceptionV3 without importing torchvision.

    ``pretrained_layout``: weights will be loaded over it, so random init is skipped where it can be.
    """
    if name == "inception_v3":
        # Our own copy of the network (see features/inception.py: the torchvision
        # package import costs more than the network's build on a small run).
        # It takes ImageNet-normalised input and maps it to the [-1, 1] scale the
        # ported Google weights expect (torchvision's transform_input).
        from fiftyone_genre.features.inception import Inception3

        return Inception3(num_classes=num_classes, init_weights=not pretrained_layout)
    from torchvision.models import get_model

    return get_model(name, weights=None, num_classes=num_classes)


def _load_body(model: nn.Module, state: dict[str, torch.Tensor], name: str, source: str) -> None:
    """Load everything but the classifier head (the head is replaced anyway) into a model built on ``meta``.

    The loaded tensors become the parameters (``assign``), as float32: no
    random init is computed only to be overwritten (0.4 s for InceptionV3).
    """
    body = {k: v.float() if v.is_floating_point() else v for k, v in state.items() if not k.startswith(HEAD_PREFIXES)}
    try:
        result = model.load_state_dict(body, strict=False, assign=True)
    except RuntimeError as e:  # size mismatches
        raise WeightsError(f"{source}: does not fit {name}: {str(e).splitlines()[-1].strip()}") from None
    missing = [k for k in result.missing_keys if not k.startswith(HEAD_PREFIXES)]
    if missing or result.unexpected_keys:
        raise WeightsError(
            f"{source}: does not fit {name}: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )


def build_body(name: str, weights: str | None = "DEFAULT", init_seed: int = 0) -> nn.Module:
    """The backbone with its classifier head replaced by ``Identity`` (outputs the pool vector)."""
    spec = spec_for(name)
    state = resolve_weights(name, weights)
    if state is None:
        model = _seeded(init_seed, lambda: _construct(name, pretrained_layout=False))
    else:
        with torch.device("meta"):  # shapes only: every tensor of the body is loaded next
            model = _construct(name, pretrained_layout=True)
        _load_body(model, state, name, str(weights))
    setattr(model, spec.head, nn.Identity())
    unloaded = [k for k, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if unloaded:  # a buffer outside the state dict: the network needs its own init
        raise WeightsError(f"{weights}: {name} has tensors no state dict holds: {unloaded[:5]}")
    return model


# --- encoders ----------------------------------------------------------------
class VisualEncoder(nn.Module):
    """``uint8 [n, 3, H, W]`` frames -> ``[n, D]`` pool features or genre probabilities.

    Normalisation runs here, on the inference device, so decode workers only
    move ``uint8`` (4x less memory and host-to-device traffic).
    """

    def __init__(self, body: nn.Module, dim: int, image_size: int, head: nn.Module | None = None):
        super().__init__()
        self.body = body
        self.head = head
        self.dim = dim
        self.image_size = image_size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.channels_last = False

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        x = (frames.float() - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.body(self.preprocess(frames))
        if self.head is not None:
            # fp32 even under bf16/fp16 autocast: probabilities must sum to 1
            x = torch.softmax(self.head(x).float(), dim=1)
        return x


class FrameClassifier(nn.Module):
    """Backbone + linear genre head: the paper's stage-1 frame classifier."""

    def __init__(self, body: nn.Module, feature_dim: int, num_classes: int):
        super().__init__()
        self.body = body
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def build_visual_backbone(
    name: str = "inception_v3",
    weights: str | None = "DEFAULT",
    mode: str = "pool",
    image_size: int | None = None,
    init_seed: int = 0,
    softmax_checkpoint: str | None = None,
    device: str | torch.device = "cpu",
    channels_last: bool | None = None,
) -> VisualEncoder:
    """The frame feature CNN in eval mode on ``device``.

    ``mode="softmax"`` needs ``softmax_checkpoint`` (written by
    :func:`fiftyone_genre.modeling.finetune.finetune_frame_classifier`); its weights replace ``weights``.
    ``channels_last`` defaults to on for CUDA (tensor cores want NHWC); the
    inference engine (:mod:`fiftyone_genre.features.engine`) sets it for extraction.
    """
    spec = spec_for(name)
    size = image_size_for(name, image_size)
    if mode == "pool":
        body = build_body(name, weights, init_seed)
        encoder = VisualEncoder(body, spec.feature_dim, size)
    elif mode == "softmax":
        if not softmax_checkpoint:
            raise ValueError(
                "mode 'softmax' needs softmax_checkpoint: run `fiftyone-genre finetune-frames` "
                "(paper stage 1) and pass its best.pt"
            )
        ckpt = read_frame_classifier(softmax_checkpoint)
        if ckpt["backbone"] != name:
            raise ValueError(
                f"{softmax_checkpoint}: fine-tuned from {ckpt['backbone']!r}, but backbone is {name!r}"
            )
        body = build_body(name, "none", init_seed)
        clf = FrameClassifier(body, spec.feature_dim, len(ckpt["genres"]))
        clf.load_state_dict(ckpt["state_dict"])
        encoder = VisualEncoder(clf.body, len(ckpt["genres"]), size, head=clf.head)
    else:
        raise ValueError(f"mode must be 'pool' or 'softmax', got {mode!r}")
    device = torch.device(device)
    if channels_last is None:
        channels_last = device.type == "cuda"
    encoder.channels_last = channels_last
    encoder = encoder.eval().to(device)
    if channels_last:
        encoder = encoder.to(memory_format=torch.channels_last)
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder


class SmallAudioCNN(nn.Module):
    """Three conv blocks, then mean over time only: ``[m, 1, n_mels, F] -> [m, C * bins]``.

    Keeping ``freq_bins`` coarse frequency rows (instead of a global average)
    means that even with random weights, a 300 Hz and a 3 kHz tone land in
    different output coordinates.
    """

    def __init__(self, n_mels: int = 64, channels: tuple[int, ...] = (16, 32, 64), freq_bins: int = 8):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c in channels:
            layers += [
                nn.Conv2d(c_in, c, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in = c
        self.features = nn.Sequential(*layers)
        rows = max(1, n_mels // 2 ** len(channels))
        self.freq_bins = max(1, min(freq_bins, rows))
        self.dim = channels[-1] * self.freq_bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # [m, C, rows, frames]
        x = x.mean(dim=3, keepdim=True)  # pool time only
        x = nn.functional.adaptive_avg_pool2d(x, (self.freq_bins, 1))
        return x.flatten(1)


class AudioEncoder(nn.Module):
    """Mel windows -> one vector per step, via ``small_cnn`` or a torchvision backbone."""

    def __init__(self, net: nn.Module, dim: int, three_channels: bool, min_size: int = 32):
        super().__init__()
        self.net = net
        self.dim = dim
        self.three_channels = three_channels
        self.min_size = min_size
        self.channels_last = False  # set by the inference engine

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        x = mels
        if self.three_channels:
            h, w = x.shape[-2:]
            if min(h, w) < self.min_size:
                scale = self.min_size / min(h, w)
                x = nn.functional.interpolate(x, size=(max(self.min_size, round(h * scale)), max(self.min_size, round(w * scale))), mode="bilinear", align_corners=False)
            x = x.expand(-1, 3, -1, -1)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)


def build_audio_cnn(
    name: str = "small_cnn",
    weights: str | None = "none",
    n_mels: int = 64,
    init_seed: int = 0,
    device: str | torch.device = "cpu",
) -> AudioEncoder:
    """The spectrogram CNN in eval mode (``small_cnn`` or any visual backbone name, 1->3 channels)."""
    if name == "small_cnn":
        state = resolve_weights(name, weights) if str(weights).lower() not in ("none", "default") else None
        if str(weights).upper() == "DEFAULT":
            raise WeightsError("small_cnn has no pretrained weights; use audio_weights none or a PATH")
        net = _seeded(init_seed + 1, lambda: SmallAudioCNN(n_mels))
        if state is not None:
            net.load_state_dict(state)
        encoder = AudioEncoder(net, net.dim, three_channels=False)
    elif name in VISUAL_BACKBONES:
        spec = VISUAL_BACKBONES[name]
        body = build_body(name, weights, init_seed + 1)
        encoder = AudioEncoder(body, spec.feature_dim, three_channels=True, min_size=spec.min_size)
    else:
        raise ValueError(f"unknown audio backbone {name!r}; choose one of {', '.join(AUDIO_BACKBONES)}")
    encoder = encoder.eval().to(torch.device(device))
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder


# --- paper stage 1 checkpoints (written by fiftyone_genre.modeling.finetune) --------
FRAME_CLASSIFIER_KIND = "fiftyone_genre.frame_classifier"


def read_frame_classifier(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint written by :func:`fiftyone_genre.modeling.finetune.finetune_frame_classifier` (``weights_only=True``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt" if (path / "best.pt").exists() else path / "last.pt"
    if not path.is_file():
        raise FileNotFoundError(f"frame classifier checkpoint not found: {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("kind") != FRAME_CLASSIFIER_KIND:
        raise ValueError(f"{path}: not a frame classifier checkpoint from `fiftyone-genre finetune-frames`")
    return ckpt
