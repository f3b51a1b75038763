"""The remote zoo source, end to end, without the internet.

A trained model directory is published as a source, the folder is served over
HTTP on 127.0.0.1 by a thread of this test, FiftyOne registers the source by
URL, downloads and loads the model, and ``apply_model`` writes predict's
labels. FiftyOne's zoo folder points at a tmp path for the test, so the
user's zoo and config are untouched.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from fiftyone_genre import genres as g
from fiftyone_genre.inference.predict import predict
from fiftyone_genre.inference.zoo import SOURCE_FOLDER, publish_source

from support.model_assets import assets, build_dataset


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def served(tmp_path):
    """``(folder, base_url)``: tmp_path/www served on a free loopback port for the test's duration."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_Quiet, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def zoo_dir(tmp_path, monkeypatch) -> Path:
    import fiftyone as fo

    zoo = tmp_path / "zoo"
    monkeypatch.setattr(fo.config, "model_zoo_dir", str(zoo))
    monkeypatch.setattr(fo.config, "model_zoo_manifest_cache_enabled", False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return zoo


@pytest.mark.parametrize("bundled", [False, True], ids=["weights-by-url", "weights-bundled"])
def test_register_download_load_and_apply(served, zoo_dir, dataset_name, bundled):
    import fiftyone.zoo as foz

    www, base = served
    name = "genre-tiny-bundled" if bundled else "genre-tiny"
    report = publish_source({name: assets().model_dir}, www, base_url=None if bundled else base + "/")
    assert (www / SOURCE_FOLDER / "manifest.json").is_file() and report.archive
    source_url = f"{base}/{SOURCE_FOLDER}.zip"

    foz.register_zoo_model_source(source_url)
    try:
        assert source_url in foz.list_zoo_model_sources()
        assert name in foz.list_zoo_models(source=source_url)
        model = foz.load_zoo_model(name, device="cpu", cache=False)
        assert foz.is_zoo_model_downloaded(name)
        assert model.classes == list(g.GENRES)

        ds = build_dataset(dataset_name)
        predict(ds, assets().model_dir)
        ds.apply_model(model, label_field="zoo_pred", store_logits=True)
        for pred, zoo in zip(ds.values(g.PRED_FIELD), ds.values("zoo_pred")):
            assert zoo.label == pred.label
            assert np.asarray(zoo.logits) == pytest.approx(np.asarray(pred.logits), abs=1e-4)
    finally:
        foz.delete_zoo_model_source(source_url)
    assert source_url not in foz.list_zoo_model_sources()
    assert not any(zoo_dir.rglob("*.pt")), "deleting the source removes its downloaded models"


def test_corrupted_download_is_refused(served, zoo_dir):
    import fiftyone.zoo as foz

    www, base = served
    publish_source({"genre-tiny": assets().model_dir}, www, base_url=base + "/")
    (www / "genre-tiny.pt").write_bytes(b"truncated")
    source_url = f"{base}/{SOURCE_FOLDER}.zip"
    foz.register_zoo_model_source(source_url)
    try:
        with pytest.raises(ValueError, match="checksum mismatch"):
            foz.load_zoo_model("genre-tiny", device="cpu", cache=False)
        assert not foz.is_zoo_model_downloaded("genre-tiny")
    finally:
        foz.delete_zoo_model_source(source_url)


def test_publish_refuses_bad_names_and_reused_folders(tmp_path):
    with pytest.raises(ValueError, match="letters, digits"):
        publish_source({"bad name/x": assets().model_dir}, tmp_path / "a")
    publish_source({"ok": assets().model_dir}, tmp_path / "b", archive=False)
    with pytest.raises(ValueError, match="already exists"):
        publish_source({"ok": assets().model_dir}, tmp_path / "b")
