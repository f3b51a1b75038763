"""Publish trained genre models as a FiftyOne remote model-zoo source.

    >>> from fiftyone_genre.inference.zoo import publish_source
    >>> publish_source({"genre-cpu-fast": "runs/cpu_fast"}, "public/", base_url="https://example.org/genre/")
    # upload public/ as is, then anyone can:
    >>> import fiftyone.zoo as foz
    >>> foz.register_zoo_model_source("https://example.org/genre/fiftyone-genre-zoo.zip")
    >>> model = foz.load_zoo_model("genre-cpu-fast", device="cpu")
    >>> dataset.apply_model(model, label_field="genre_zoo")

The published folder follows FiftyOne's remote-source layout: a
``manifest.json`` listing the models, and an ``__init__.py`` (copied from
``fiftyone_genre/inference/zoo/source``) whose ``download_model`` / ``load_model``
FiftyOne calls. ``genre_models.json`` beside them says where each checkpoint
is (bundled in the source, or at a URL) and its sha256. A GitHub repository
holding the folder works as a source too (``register_zoo_model_source("user/repo")``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fiftyone_genre.modeling.model import Checkpoint, read_checkpoint
from fiftyone_genre.report import Report

#: Folder (and archive) name of a published source.
SOURCE_FOLDER = "fiftyone-genre-zoo"
_TEMPLATE = Path(__file__).resolve().parent / "source" / "__init__.py"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class PublishReport(Report):
    """Where a published source is and what to register."""

    source_dir: str
    archive: str | None
    models: dict[str, str] = field(default_factory=dict)  # name -> where its checkpoint is served from

    def __str__(self) -> str:
        lines = [f"zoo source: {self.source_dir}" + (f" (archive {self.archive})" if self.archive else "")]
        lines += [f"  {name}: {where}" for name, where in self.models.items()]
        return "\n".join(lines)


def publish_source(
    models: Mapping[str, str | Path],
    out_dir: str | Path,
    base_url: str | None = None,
    source_name: str = "fiftyone-genre",
    archive: bool = True,
    author: str | None = None,
    license: str | None = None,  # noqa: A002 - FiftyOne's manifest key
) -> PublishReport:
    """Write a remote model source for ``{zoo name: model directory}`` into ``out_dir``.

    With ``base_url`` the checkpoints are written beside the source (serve
    ``out_dir`` at that URL) and downloaded on first use; without it they are
    bundled inside the source folder. ``archive`` also writes
    ``<out_dir>/fiftyone-genre-zoo.zip``, the URL to register.
    """
    bad = [name for name in models if not _NAME.match(name)]
    if bad:
        raise ValueError(f"zoo model name {bad[0]!r}: use letters, digits, '.', '_' and '-' only")
    out = Path(out_dir)
    folder = out / SOURCE_FOLDER
    if folder.exists():
        raise ValueError(f"{folder}: already exists; publish into an empty folder")
    folder.mkdir(parents=True)
    shutil.copyfile(_TEMPLATE, folder / "__init__.py")
    entries, manifest_models, report = {}, [], PublishReport(str(folder), None)
    for name, model_dir in models.items():
        ckpt = read_checkpoint(model_dir)
        entry = _place_checkpoint(ckpt, name, out, folder, base_url)
        entries[name] = entry
        report.models[name] = entry.get("url") or entry["bundled"]
        manifest_models.append(_manifest_entry(name, ckpt, entry, author, license))
    (folder / "genre_models.json").write_text(json.dumps(entries, indent=2), encoding="utf-8")
    manifest = {"name": source_name, "url": None, "models": manifest_models}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    if archive:
        report.archive = shutil.make_archive(str(out / SOURCE_FOLDER), "zip", root_dir=out, base_dir=SOURCE_FOLDER)
    return report


def _place_checkpoint(ckpt: Checkpoint, name: str, out: Path, folder: Path, base_url: str | None) -> dict:
    """Copy the checkpoint where it will be served from; its ``genre_models.json`` entry."""
    filename = f"{name}.pt"
    if base_url is None:
        dest = folder / "models" / filename
        entry = {"bundled": f"models/{filename}"}
    else:
        dest = out / filename
        entry = {"url": base_url.rstrip("/") + "/" + filename}
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ckpt.path, dest)
    entry["sha256"] = hashlib.sha256(dest.read_bytes()).hexdigest()
    entry["size_bytes"] = dest.stat().st_size
    return entry


def _manifest_entry(name: str, ckpt: Checkpoint, entry: dict, author: str | None, license: str | None) -> dict:  # noqa: A002
    """One model in FiftyOne's manifest format (no ``manager``: the source's ``download_model`` fetches it)."""
    exp = ckpt.experiment
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in ckpt.metrics.items() if isinstance(v, (int, float)))
    return {
        "base_name": name,
        "base_filename": f"{name}.pt",
        "author": author,
        "license": license,
        "url": entry.get("url"),
        "source": None,
        "description": (
            f"Audio-visual video genre classifier (CNN-LSTM, {exp.model.modality}) over "
            f"{exp.features.backbone} features at {exp.features.fps:g} fps; genres: {', '.join(ckpt.genres)}"
            + (f"; {metrics}" if metrics else "")
        ),
        "size_bytes": entry["size_bytes"],
        "tags": ["video", "classification", "embeddings", "logits", "genre", "torch"],
        "date_added": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        "requirements": {
            "packages": ["fiftyone-genre", "torch", "torchvision", "av"],
            "cpu": {"support": True},
            "gpu": {"support": True},
        },
    }
