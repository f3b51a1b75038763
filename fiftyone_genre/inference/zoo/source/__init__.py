"""fiftyone-genre remote model source: the entry points FiftyOne's zoo calls.

This file is copied, as is, into every published source folder next to
``manifest.json`` and ``genre_models.json`` (see :func:`fiftyone_genre.inference.zoo.publish_source`).
FiftyOne imports it from its model zoo folder after
``foz.register_zoo_model_source(url)`` and calls:

- ``download_model(model_name, model_path)`` the first time a model is loaded:
  the checkpoint is copied from the source folder (bundled) or downloaded
  from its URL, checked against its sha256, and moved into place atomically;
- ``load_model(model_name, model_path, **kwargs)``: a
  :class:`fiftyone_genre.GenreModel` (``kwargs``: ``device``, ``cache_dir``,
  ``confidence_thresh``, ``batch_size``, ``extract_missing``).

It only needs the standard library until ``load_model`` imports the package.
"""

import hashlib
import json
import os
import shutil
import urllib.request

#: Seconds without data before a download is given up.
DOWNLOAD_TIMEOUT_S = 60
_HERE = os.path.dirname(os.path.abspath(__file__))


def _entry(model_name):
    with open(os.path.join(_HERE, "genre_models.json"), encoding="utf-8") as f:
        models = json.load(f)
    base = model_name.split("@", 1)[0]
    if base not in models:
        raise ValueError(f"{_HERE}: this source has no model '{model_name}' (it has: {', '.join(sorted(models))})")
    return models[base]


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(entry, tmp):
    bundled = entry.get("bundled")
    if bundled:
        shutil.copyfile(os.path.join(_HERE, bundled), tmp)
        return
    with urllib.request.urlopen(entry["url"], timeout=DOWNLOAD_TIMEOUT_S) as r, open(tmp, "wb") as f:
        shutil.copyfileobj(r, f)


def download_model(model_name, model_path):
    """Put the checkpoint of ``model_name`` at ``model_path`` (verified, atomic)."""
    entry = _entry(model_name)
    os.makedirs(os.path.dirname(model_path), exist_ok=True)
    tmp = model_path + ".part"
    try:
        _fetch(entry, tmp)
        digest = _sha256(tmp)
        if entry.get("sha256") and digest != entry["sha256"]:
            raise ValueError(
                f"{entry.get('url') or entry.get('bundled')}: checksum mismatch for model '{model_name}' "
                f"(got {digest[:12]}..., expected {entry['sha256'][:12]}...): download again"
            )
        os.replace(tmp, model_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_model(model_name, model_path, **kwargs):
    """The downloaded checkpoint as a FiftyOne model (``apply_model``, ``compute_embeddings``)."""
    from fiftyone_genre import GenreModel

    return GenreModel.from_dir(model_path, **kwargs)
