"""The audio-visual CNN-LSTM: per-step CNN features -> projection -> fusion -> LSTM -> genres.

The CNNs run once, at feature extraction (:mod:`fiftyone_genre.features`); this module sees
their per-step vectors, as the paper's LSTM saw InceptionV3 features. Each
modality is projected, the projections are concatenated, a (wide) LSTM reads
the sequence, and a linear layer scores the genres from the last valid state.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from fiftyone_genre.config import ExperimentConfig, ModelConfig
from fiftyone_genre.storage import (
    FolderLock,
    check_own_folder,
    check_writable,
    describe_holder,
    disk_error,
)
from fiftyone_genre.utils import atomic_path, shown

CHECKPOINT_VERSION = 1
BEST_NAME = "best.pt"
LAST_NAME = "last.pt"
MODALITIES = ("fused", "visual", "audio")
#: What a training run writes into its model folder: an existing ``--out`` may hold only these.
MODEL_FOLDER_NAMES = frozenset({
    BEST_NAME, LAST_NAME, "experiment.yaml", "genres.json", "history.json", "report.json", "report.txt",
    "curves.png", "tb",
})


@dataclass
class GenreOutput:
    logits: torch.Tensor  # [B, num_classes]
    embedding: torch.Tensor  # [B, hidden_size]: the LSTM state the classifier reads


class GenreCRNN(nn.Module):
    """CNN-feature LSTM over one or both modalities.

    Args:
        visual_dim: size of a cached visual feature vector (2048 for InceptionV3 pool).
        audio_dim: size of a cached audio feature vector.
        num_classes: number of genres.
        modality: ``"fused"`` (both), ``"visual"`` or ``"audio"``.
        visual_proj, audio_proj: projection sizes before fusion.
        hidden_size: LSTM width (the paper's "wide" LSTM is ~2048).
        num_layers: stacked LSTM layers.
        dropout: dropout on the projections and before the classifier.
        modality_dropout: training-time probability of hiding one modality
            (fused models only), so visual-only/audio-only inference is meaningful.
    """

    def __init__(
        self,
        visual_dim: int,
        audio_dim: int,
        num_classes: int,
        modality: str = "fused",
        visual_proj: int = 512,
        audio_proj: int = 128,
        hidden_size: int = 2048,
        num_layers: int = 1,
        dropout: float = 0.5,
        modality_dropout: float = 0.0,
    ):
        super().__init__()
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        self.modality = modality
        self.modality_dropout = modality_dropout
        self.uses_visual = modality in ("fused", "visual")
        self.uses_audio = modality in ("fused", "audio")
        self.visual_proj = self._projection(visual_dim, visual_proj, dropout) if self.uses_visual else None
        self.audio_proj = self._projection(audio_dim, audio_proj, dropout) if self.uses_audio else None
        in_size = (visual_proj if self.uses_visual else 0) + (audio_proj if self.uses_audio else 0)
        self.lstm = nn.LSTM(
            in_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_classes)
        # Per-dimension feature standardisation, fitted on the training split
        # (set_feature_stats) and saved in the state dict, so prediction
        # normalises exactly as training did. Backbones differ wildly in scale
        # (a randomly initialised MobileNet pools to ~1e-8), which LayerNorm's
        # epsilon alone would flatten to zero.
        self.register_buffer("visual_mean", torch.zeros(visual_dim))
        self.register_buffer("visual_std", torch.ones(visual_dim))
        self.register_buffer("audio_mean", torch.zeros(audio_dim))
        self.register_buffer("audio_std", torch.ones(audio_dim))

    @torch.no_grad()
    def set_feature_stats(
        self,
        visual_mean: torch.Tensor,
        visual_std: torch.Tensor,
        audio_mean: torch.Tensor,
        audio_std: torch.Tensor,
    ) -> None:
        """Standardise inputs with these per-dimension statistics (from the training features)."""
        for name, value in (
            ("visual_mean", visual_mean),
            ("visual_std", visual_std),
            ("audio_mean", audio_mean),
            ("audio_std", audio_std),
        ):
            buf = getattr(self, name)
            buf.copy_(torch.as_tensor(value, dtype=buf.dtype))

    @staticmethod
    def _projection(in_dim: int, out_dim: int, dropout: float) -> nn.Sequential:
        return nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, out_dim), nn.ReLU(), nn.Dropout(dropout))

    def forward(
        self,
        visual: torch.Tensor,
        audio: torch.Tensor,
        mask: torch.Tensor | None = None,
        use: str | None = None,
    ) -> GenreOutput:
        """Score a batch of windows.

        Args:
            visual: ``[B, T, Dv]`` visual features.
            audio: ``[B, T, Da]`` audio features.
            mask: ``[B, T]`` bool, True on real steps (a prefix); None = all real.
            use: for a fused model, ``"visual"`` or ``"audio"`` hides the other
                modality (its projection is zeroed) to get single-modality scores.
        """
        b, t = visual.shape[:2]
        parts = []
        hide_visual = use == "audio"
        hide_audio = use == "visual"
        if self.training and self.modality == "fused" and self.modality_dropout > 0:
            drop = torch.rand(b, device=visual.device) < self.modality_dropout
            which = torch.rand(b, device=visual.device) < 0.5
            keep_v = ~(drop & which)
            keep_a = ~(drop & ~which)
        else:
            keep_v = keep_a = None
        if self.uses_visual:
            v = self.visual_proj((visual - self.visual_mean) / self.visual_std)
            if hide_visual:
                v = torch.zeros_like(v)
            elif keep_v is not None:
                v = v * keep_v[:, None, None].to(v.dtype)
            parts.append(v)
        if self.uses_audio:
            a = self.audio_proj((audio - self.audio_mean) / self.audio_std)
            if hide_audio:
                a = torch.zeros_like(a)
            elif keep_a is not None:
                a = a * keep_a[:, None, None].to(a.dtype)
            parts.append(a)
        x = torch.cat(parts, dim=-1)
        if mask is None:
            lengths = torch.full((b,), t, dtype=torch.long)
        else:
            lengths = mask.sum(dim=1).clamp(min=1).long().cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        embedding = h_n[-1]
        logits = self.classifier(self.dropout(embedding))
        return GenreOutput(logits=logits, embedding=embedding)


def build_model(config: ModelConfig, visual_dim: int, audio_dim: int, num_classes: int) -> GenreCRNN:
    """The model an experiment's ``model`` section describes."""
    return GenreCRNN(
        visual_dim=visual_dim,
        audio_dim=audio_dim,
        num_classes=num_classes,
        modality=config.modality,
        visual_proj=config.visual_proj,
        audio_proj=config.audio_proj,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        dropout=config.dropout,
        modality_dropout=config.modality_dropout,
    )


@dataclass
class Checkpoint:
    """What a model directory holds besides the weights."""

    path: Path
    experiment: ExperimentConfig
    genres: list[str]
    visual_dim: int
    audio_dim: int
    epoch: int
    metrics: dict[str, Any]
    raw: dict[str, Any]


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    experiment: ExperimentConfig,
    genres: list[str],
    visual_dim: int,
    audio_dim: int,
    epoch: int,
    metrics: dict[str, Any] | None = None,
    **extra: Any,
) -> Path:
    """Atomically write a checkpoint loadable with ``torch.load(weights_only=True)``.

    Only tensors and plain Python values go in (no pickled objects), so a
    checkpoint from a stranger cannot run code when loaded. ``extra`` holds
    training state for resume (optimizer/scheduler state dicts, RNG tensors).
    """
    path = Path(path)
    module = model.module if hasattr(model, "module") else model
    payload = {
        "format_version": CHECKPOINT_VERSION,
        "state_dict": module.state_dict(),
        "experiment": experiment.to_dict(),
        "genres": list(genres),
        "visual_dim": int(visual_dim),
        "audio_dim": int(audio_dim),
        "epoch": int(epoch),
        "metrics": dict(metrics or {}),
        **extra,
    }
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    except (OSError, RuntimeError) as e:  # torch reports a full disk as RuntimeError("... unexpected pos ...")
        problem = disk_error(e, path.parent, "model folder", needed=_payload_bytes(payload))
        if problem is None:
            raise
        raise problem from None
    return path


def _payload_bytes(value: Any) -> int:
    """About what ``torch.save`` writes for ``value``: its tensors' bytes, +10 % and 64 KB of framing."""
    def tensor_bytes(v: Any) -> int:
        if isinstance(v, torch.Tensor):
            return v.numel() * v.element_size()
        if isinstance(v, dict):
            return sum(tensor_bytes(x) for x in v.values())
        if isinstance(v, (list, tuple)):
            return sum(tensor_bytes(x) for x in v)
        return 0

    return int(tensor_bytes(value) * 1.1) + 65536


def claim_model_folder(out_dir: str | Path, doing: str = "training into", extra_names: Iterable[str] = ()) -> FolderLock:
    """Check and lock a model folder before a run writes into it; release the returned lock at the end.

    A folder holding anything a run would not write there (a user's files,
    ``/``, the home folder) is refused, so nothing of theirs sits beside or
    under our checkpoints. A second run into the same folder is refused,
    naming the first (:class:`~fiftyone_genre.storage.FolderLock`); a lock
    left by a killed run is taken over.
    """
    out_dir = Path(out_dir)
    check_own_folder(out_dir, MODEL_FOLDER_NAMES | set(extra_names))
    check_writable(out_dir, "model folder")
    lock = FolderLock(out_dir, doing).acquire()
    if lock.took_over:
        print(f"{shown(out_dir)}: taking over from a run that stopped ({describe_holder(lock.took_over)})", flush=True)
    return lock


def find_checkpoint(model_dir: str | Path) -> Path:
    """``best.pt`` (or ``last.pt``) in a model directory, or a checkpoint file itself."""
    p = Path(model_dir)
    if p.is_file():
        return p
    if not p.exists():
        raise FileNotFoundError(f"{shown(p)}: no checkpoint: no such model directory or checkpoint file")
    if not p.is_dir():
        raise FileNotFoundError(f"{shown(p)}: no checkpoint: not a model directory or checkpoint file")
    for name in (BEST_NAME, LAST_NAME):
        if (p / name).is_file():
            return p / name
    raise FileNotFoundError(f"{shown(p)}: no checkpoint ({BEST_NAME} or {LAST_NAME}) in this model directory")


def _unreadable_reason(error: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in our words.

    torch's own message advises re-running with ``weights_only=False``: that
    would let a stranger's file run code, so it is never passed on.
    """
    text = str(error)
    detail = text.split("WeightsUnpickler error:", 1)[1].strip().split("\n")[0] if "WeightsUnpickler error:" in text else ""
    if "Unsupported global" in detail or "Unsupported class" in detail:
        what = detail.split("GLOBAL", 1)[-1].split(" was not")[0].strip()
        return f"it holds a pickled Python object ({what}) that the safe weights_only loader refuses to run"
    return "not a PyTorch checkpoint: corrupt, truncated or another kind of file"


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint's contents safely (``weights_only=True``).

    The file is always read onto the CPU (tensors move to the device later):
    an unusable device must be reported as a device problem, not blamed on
    the checkpoint. ``map_location`` is kept for callers; only "cpu" is used.
    """
    path = find_checkpoint(path)
    # Every checkpoint torch >= 1.6 writes is a zip: anything else (a plain
    # pickle, a legacy file, junk) is refused before torch reads it, so
    # torch's warnings about it never reach the user.
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{shown(path)}: not a readable checkpoint (not a PyTorch checkpoint: corrupt, truncated, "
            "a plain pickle or another kind of file)"
        )
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ValueError(f"{shown(path)}: not a readable checkpoint ({_unreadable_reason(e)})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{shown(path)}: not a fiftyone-genre checkpoint (holds a {type(raw).__name__})")
    missing = {"state_dict", "experiment", "genres", "visual_dim", "audio_dim"} - set(raw)
    if missing:
        raise ValueError(f"{shown(path)}: not a fiftyone-genre checkpoint (missing {', '.join(sorted(missing))})")
    return Checkpoint(
        path=path,
        experiment=ExperimentConfig.from_dict(raw["experiment"], f"{path}:experiment"),
        genres=list(raw["genres"]),
        visual_dim=int(raw["visual_dim"]),
        audio_dim=int(raw["audio_dim"]),
        epoch=int(raw.get("epoch", 0)),
        metrics=dict(raw.get("metrics") or {}),
        raw=raw,
    )


def load_model(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[GenreCRNN, Checkpoint]:
    """The trained model (eval mode, on ``device``) and its checkpoint info."""
    ckpt = read_checkpoint(model_dir, map_location=device)
    model = build_model(ckpt.experiment.model, ckpt.visual_dim, ckpt.audio_dim, len(ckpt.genres))
    model.load_state_dict(ckpt.raw["state_dict"])
    model.to(device).eval()
    return model, ckpt
