"""evaluate / confusion views / brain maps / disagreement, and the four App operators.

One dataset is predicted once per module with the tiny trained model of
``support.model_assets``; it carries planted label errors (3 Horror-labelled clips
that look and sound like Action, 2 Romance-labelled that are Horror) and 2
clips whose picture and soundtrack disagree.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fiftyone_genre import genres as g
from fiftyone_genre.analysis import (
    compute_maps,
    confusion_view,
    confusion_view_name,
    disagreement_view,
    evaluate,
    slugify,
)
from fiftyone_genre.inference.predict import predict

from support.model_assets import assets, build_dataset

PLUGIN = "@fiftyone-genre/genre"


@pytest.fixture(scope="module")
def ds():
    import fiftyone as fo

    name = f"test-analysis-{uuid.uuid4().hex[:8]}"
    dataset = build_dataset(name, extra_uncached=1)
    predict(dataset, assets().model_dir)
    yield dataset
    if fo.dataset_exists(name):
        fo.delete_dataset(name)


def _cells_from_fields(collection, pred_field=g.PRED_FIELD, gt_field=g.GENRE_FIELD) -> dict:
    """``(true, pred) -> set(sample ids)`` read straight from the sample fields."""
    view = collection.exists(pred_field).exists(gt_field)
    ids, t, p = view.values(["id", f"{gt_field}.label", f"{pred_field}.label"])
    cells: dict = {}
    for i, a, b in zip(ids, t, p):
        cells.setdefault((a, b), set()).add(i)
    return cells


def test_slugs():
    assert slugify("Science Fiction") == "science-fiction"
    assert confusion_view_name(g.HORROR, g.ACTION) == "horror-predicted-as-action"
    assert confusion_view_name(g.HORROR, g.ACTION, "run2") == "horror-predicted-as-action-run2"


def test_evaluate_json_matches_the_fields_and_saved_views_hold_exactly_the_cells(ds, tmp_path):
    report = evaluate(ds, out_dir=tmp_path)
    data = json.loads(report.to_json())
    cells = _cells_from_fields(ds)
    n = sum(len(v) for v in cells.values())
    assert data["num_samples"] == n == len(ds) - 1 and data["num_skipped"] == 1
    correct = sum(len(v) for (a, b), v in cells.items() if a == b)
    assert data["accuracy"] == pytest.approx(correct / n)

    labels = data["labels"]
    assert labels[: len(g.GENRES)] == list(g.GENRES)
    cm = np.array(data["confusion_matrix"])
    for i, a in enumerate(labels):
        for j, b in enumerate(labels):
            assert cm[i, j] == len(cells.get((a, b), ()))
    support = Counter(ds.exists(g.PRED_FIELD).values(f"{g.GENRE_FIELD}.label"))
    for genre, scores in data["per_genre"].items():
        assert scores["support"] == support.get(genre, 0)
        assert 0.0 <= scores["f1"] <= 1.0
    present = [x for x in labels if cm[labels.index(x)].sum() + cm[:, labels.index(x)].sum()]
    assert data["macro_f1"] == pytest.approx(np.mean([data["per_genre"][x]["f1"] for x in present]))

    # The planted errors are the two largest confusions, and each saved view is exactly its cell.
    assert data["saved_views"][:2] == ["horror-predicted-as-action", "romance-predicted-as-horror"]
    planted = set(ds.match({"clip_name": {"$regex": "^h_as_a"}}).values("id"))
    assert set(ds.load_saved_view("horror-predicted-as-action").values("id")) == planted
    off_diagonal = {k: v for k, v in cells.items() if k[0] != k[1]}
    assert len(data["saved_views"]) == len(off_diagonal)
    for cell in data["confusions"]:
        view = ds.load_saved_view(cell["view"])
        assert set(view.values("id")) == off_diagonal[(cell["true"], cell["pred"])]
        assert cell["count"] == len(view)

    # Stored for the App's evaluation panel, plus the PNG and the printed tables.
    assert ds.has_evaluation("genre_eval")
    assert len(ds.load_evaluation_view("genre_eval")) == n
    assert ds.load_evaluation_results("genre_eval").confusion_matrix().sum() == n
    png = Path(data["plot_path"])
    assert png.parent == tmp_path and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = str(report)
    assert "macro-F1" in text and "Science Fiction" in text and "horror-predicted-as-action" in text


def test_reevaluation_replaces_stale_views_only(ds, tmp_path):
    import fiftyone as fo

    ds.save_view("my-own-view", ds.limit(2))
    sample = ds.match({"clip_name": "r_as_h_0"}).first()
    evaluate(ds, out_dir=tmp_path)
    assert "romance-predicted-as-horror" in ds.list_saved_views()
    try:
        # Fix both planted Romance labels: the cell disappears, so must its view.
        for s in ds.match({"clip_name": {"$regex": "^r_as_h"}}):
            s[g.GENRE_FIELD] = fo.Classification(label=g.HORROR)
            s.save()
        report = evaluate(ds, out_dir=tmp_path)
        assert "romance-predicted-as-horror" not in ds.list_saved_views()
        assert "romance-predicted-as-horror" not in report.saved_views
        assert "my-own-view" in ds.list_saved_views()
        other = evaluate(ds, eval_key="second", out_dir=tmp_path, max_views=1)
        assert other.saved_views == ["horror-predicted-as-action-second"]
        assert set(ds.list_evaluations()) >= {"genre_eval", "second"}
    finally:
        for s in ds.match({"clip_name": {"$regex": "^r_as_h"}}):
            s[g.GENRE_FIELD] = fo.Classification(label=g.ROMANCE)
            s.save()
        ds.delete_saved_view("my-own-view")
        evaluate(ds, out_dir=tmp_path)
    assert sample.id in ds.load_saved_view("romance-predicted-as-horror").values("id")


def test_cli_evaluate_json_prints_only_json(ds, tmp_path, capsys):
    from fiftyone_genre.cli import main

    assert main(["evaluate", "--dataset", ds.name, "--out", str(tmp_path), "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert set(data) >= {"accuracy", "macro_f1", "per_genre", "confusion_matrix", "labels", "saved_views"}
    assert main(["evaluate", "--dataset", ds.name, "--out", str(tmp_path)]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_confusion_and_disagreement_views(ds):
    view = confusion_view(ds, g.HORROR, g.ACTION)
    assert set(view.values("clip_name")) == {"h_as_a_0", "h_as_a_1", "h_as_a_2"}
    conf = view.values(f"{g.PRED_FIELD}.confidence")
    assert conf == sorted(conf, reverse=True)

    dis = disagreement_view(ds)
    assert set(dis.values("clip_name")) == {"disagree_0", "disagree_1"}
    v = dis.values(f"{g.PRED_VISUAL_FIELD}.confidence")
    a = dis.values(f"{g.PRED_AUDIO_FIELD}.confidence")
    keys = [min(x, y) for x, y in zip(v, a)]
    assert keys == sorted(keys, reverse=True)
    for s in dis:
        assert s[g.PRED_VISUAL_FIELD].label != s[g.PRED_AUDIO_FIELD].label


def test_compute_maps_brain_runs_and_reruns(ds):
    report = compute_maps(ds)
    runs = set(ds.list_brain_runs())
    assert {"genre_umap", "genre_sim", "mistakenness", "hardness"} <= runs
    n = len(ds.exists(g.EMBEDDING_FIELD))
    assert report.num_samples == n and report.num_neighbors < n
    results = ds.load_brain_results("genre_umap")
    assert results.points.shape == (n, 2)
    assert ds.get_brain_info("genre_umap").config.method == "umap"
    # Likely label errors: every planted mislabel is more 'mistaken' than every clean clip.
    kind, mist = ds.exists("mistakenness").values(["clip_kind", "mistakenness"])
    planted = [m for k, m in zip(kind, mist) if k == "mislabeled"]
    clean = [m for k, m in zip(kind, mist) if k == "clean"]
    assert len(planted) == 5 and min(planted) > max(clean)
    assert all(h is not None for h in ds.exists(g.PRED_FIELD).values("hardness"))
    # Similarity index answers queries on the clip embeddings.
    query = ds.match({"clip_name": "clean_0_0"}).first().id
    nearest = ds.sort_by_similarity(query, k=3, brain_key="genre_sim").values("clip_kind")
    assert nearest[0] == "clean"
    # A re-run (on a view, other settings) replaces its own keys without complaint.
    compute_maps(ds.exists(g.PRED_FIELD).limit(10), num_neighbors=4)
    assert set(ds.list_brain_runs()) == runs
    assert ds.load_brain_results("genre_umap").points.shape == (10, 2)


def test_tiny_collections_are_refused_clearly(ds):
    with pytest.raises(ValueError, match="at least 3"):
        compute_maps(ds.exists(g.EMBEDDING_FIELD).limit(2))


# --------------------------------------------------------------------------- operators


def _op(name):
    import fiftyone.operators as foo

    return foo.get_operator(f"{PLUGIN}/{name}")


def _ctx(ds, params):
    import fiftyone.operators as foo

    return foo.ExecutionContext(
        request_params={"dataset_name": ds.name, "view": ds.view()._serialize(), "params": params}
    )


def _requests(result) -> list[tuple[str, dict]]:
    """What the operator asked the App to do (``ctx.ops.*`` become invocation requests)."""
    return [(r.operator_uri.split("/")[-1], r.params) for r in result.executor._requests]


def test_operator_forms_explain_problems_and_place_buttons(ds, tmp_path):
    import fiftyone.operators.types as types

    predict_op = _op("predict_genres")
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    for value, message in ((str(empty), f"no checkpoint in {empty}"), ("/no/such/dir", "no such folder")):
        prop = predict_op.resolve_input(_ctx(ds, {"model_dir": value}))
        field = prop.type.properties["model_dir"]
        assert field.invalid and message in field.error_message
        # shown once, on the field itself (no second red box); the form's root stays valid,
        # else FiftyOne would not show the field's own error (Execute is disabled either way)
        assert "model_dir_error" not in prop.type.properties and not prop.invalid
    prop = predict_op.resolve_input(_ctx(ds, {"model_dir": str(assets().model_dir)}))
    assert not prop.type.properties["model_dir"].invalid

    for name in ("predict_genres", "evaluate_genres", "open_confusion_view"):
        placement = _op(name).resolve_placement(_ctx(ds, {}))
        assert placement.place == types.Places.SAMPLES_GRID_SECONDARY_ACTIONS
        assert placement.view.to_json().get("icon")
    assert _op("predict_genres").config.allow_delegated_execution
    assert _op("compute_genre_maps").config.allow_delegated_execution

    form = _op("open_confusion_view").resolve_input(_ctx(ds, {}))
    props = form.type.properties
    assert set(props["true_genre"].type.values) >= set(g.GENRES)
    # Defaults point at the largest confusion: one click to the worst mistake.
    assert props["true_genre"].default == g.HORROR and props["pred_genre"].default == g.ACTION


def test_operators_run_through_fiftyone(ds, tmp_path):
    import fiftyone.operators as foo

    # Predict: a bad directory is stopped by the form's validation.
    with pytest.raises(Exception, match="no checkpoint"):
        foo.execute_operator(f"{PLUGIN}/predict_genres", dict(dataset=ds), params={"model_dir": str(tmp_path)})

    sub = ds.match({"clip_kind": "disagree"})
    before = sub.values(f"{g.PRED_FIELD}.id")
    result = _op("predict_genres")(sub, assets().model_dir, device="cpu")
    assert result.result["num_predicted"] == 2
    assert sub.values(f"{g.PRED_FIELD}.id") != before
    assert "reload_dataset" in [n for n, _ in _requests(result)]

    result = _op("evaluate_genres")(ds, out_dir=str(tmp_path))
    assert "horror-predicted-as-action" in result.result["saved_views"]
    assert result.result["accuracy"] == pytest.approx(evaluate(ds, out_dir=tmp_path).accuracy)

    result = _op("open_confusion_view")(ds, g.HORROR, g.ACTION)
    assert result.result["count"] == 3
    name, params = next(r for r in _requests(result) if r[0] == "set_view")
    assert params["view"]  # the serialized confusion view the App switches to

    result = _op("compute_genre_maps")(ds, hardness=False)
    assert result.result["visualization_key"] == "genre_umap"
    assert ds.has_brain_run("genre_umap") and ds.has_brain_run("genre_sim")


# --------------------------------------------------------------------------- issue 18: the App layer


@pytest.fixture
def split_clone(ds):
    """A copy of the predicted dataset with a split (every third clip in test)."""
    import fiftyone as fo

    clone = ds.clone(f"{ds.name}-split-{uuid.uuid4().hex[:6]}")
    n = len(clone)
    clone.set_values(g.SPLIT_FIELD, [("test", "train", "val")[i % 3] for i in range(n)])
    yield clone
    if fo.dataset_exists(clone.name):
        fo.delete_dataset(clone.name)


def test_evaluate_one_split_under_its_own_key(split_clone, tmp_path):
    from fiftyone_genre.analysis import DEFAULT_EVAL_KEY, default_eval_split, eval_key_for

    assert default_eval_split(split_clone) == "test"
    whole = evaluate(split_clone, out_dir=tmp_path)
    test = evaluate(split_clone, split="test", out_dir=tmp_path)
    assert (whole.eval_key, test.eval_key) == (DEFAULT_EVAL_KEY, eval_key_for("test")) == ("genre_eval", "genre_eval_test")
    # the test-only evaluation does not replace the whole-dataset one
    assert split_clone.has_evaluation("genre_eval") and split_clone.has_evaluation("genre_eval_test")
    n_test = len(split_clone.match({g.SPLIT_FIELD: "test"}).exists(g.PRED_FIELD).exists(g.GENRE_FIELD))
    assert test.num_samples == n_test < whole.num_samples
    assert test.to_dict()["split"] == "test" and "test split" in str(test)


def test_evaluation_report_reads_well(ds, tmp_path):
    report = evaluate(ds, out_dir=tmp_path)
    md = report.markdown()
    assert "| Science Fiction |" in md or g.SCIENCE_FICTION not in report.labels
    assert re.search(r"Accuracy \d\.\d{3}\*\*", md)
    assert not re.search(r"\d\.\d{4,}", md), "metrics must be rounded"
    header = report.confusion_text().splitlines()[0]
    for label in report.labels:
        assert label in header, f"matrix header cuts {label!r}: {header}"


def test_counts_and_field_choices_live_in_the_library(ds):
    from fiftyone_genre import analysis as an

    labels, matrix = an.confusion_counts(ds)
    pairs = an.pair_counts(ds)
    assert sum(map(sum, matrix)) == sum(pairs.values()) == len(ds.exists(g.PRED_FIELD).exists(g.GENRE_FIELD))
    assert an.accuracy(matrix) == pytest.approx(sum(n for (t, p), n in pairs.items() if t == p) / sum(pairs.values()))
    assert an.accuracy([]) is None
    assert g.PRED_FIELD not in an.ground_truth_fields(ds) and g.GENRE_FIELD in an.ground_truth_fields(ds)
    assert g.PRED_FIELD in an.prediction_fields(ds) and g.GENRE_FIELD not in an.prediction_fields(ds)
    import operators.panel as panel

    assert panel.confusion_counts is an.confusion_counts  # the panel only calls the library


def _messages(prop) -> list[str]:
    """Every error text the App renders: each invalid field's message (under that field) and
    each red box. A hidden invalid property only keeps Execute disabled; it renders nothing."""
    shown = []
    for p in prop.type.properties.values():
        view = p.view.to_json() if p.view is not None else {}
        if p.invalid and p.error_message and view.get("name") != "HiddenView":
            shown.append(p.error_message)
        if view.get("name") == "Error":
            shown.append(view.get("label"))
    return shown


def _in_error_state(p) -> bool:
    """The field's MUI input gets ``error`` (red outline, aria-invalid) through its view's componentsProps."""
    props = (p.view.to_json() if p.view is not None else {}).get("componentsProps") or {}
    return any((props.get(slot) or {}).get("error") for slot in ("field", "select"))


@pytest.mark.parametrize(
    "operator, params, field, message",
    [
        ("predict_genres", {"model_dir": "/no/such/dir"}, "model_dir", "Model directory: no such folder"),
        ("evaluate_genres", {"eval_key": "bad key"}, "eval_key",
         "Evaluation key: use letters, digits and underscores only"),
        ("compute_genre_maps", {"brain_key": "bad key"}, "brain_key",
         "Map brain key: use letters, digits and underscores only"),
        ("open_confusion_view", {"true_genre": g.HORROR, "pred_genre": g.SPORTS}, "pred_genre",
         "Predicted genre: no clip labelled Horror is predicted as Sports"),
        ("relabel_samples", {}, None, "Select the clips to relabel first."),
        ("split_dataset", {"train": 0.9}, "test", "test ratio: the ratios sum to 1.10"),
        ("extract_features", {"shard": "abc"}, "shard", "Shard K/N: must look like K/N"),
        ("train_model", {"epochs": 0, "out_dir": "/tmp/fiftyone-genre-never-written"}, "epochs",
         "Epochs: must be at least 1."),
        ("remap_genres", {"mapping": "/no/such/map.yaml"}, "mapping",
         "Mapping file: /no/such/map.yaml: no such mapping file"),
        ("import_videos", {"path": "/no/such/dir"}, "path", "Path: no such folder"),
    ],
)
def test_every_form_refuses_bad_input_once_on_its_field(ds, operator, params, field, message):
    """Invalid input is marked once, on its field, in words that name the field (no CLI flags);
    Execute is disabled and execute refuses it with the same sentence."""
    import fiftyone.operators as foo

    prop = _op(operator).resolve_input(_ctx(ds, params))
    shown = [m for m in _messages(prop) if message in m]
    assert len(shown) == 1, f"{operator}: {message!r} shown {len(shown)} times: {_messages(prop)}"
    assert not prop.invalid, f"{operator}: an invalid root hides every field's own error"
    props = prop.type.properties
    assert any(p.invalid for p in props.values()), f"{operator}: Execute would stay enabled"
    if field is not None:
        assert props[field].invalid and props[field].error_message.startswith(message), props[field].error_message
        assert _in_error_state(props[field]), f"{operator}.{field}: no red outline / aria-invalid"
    assert "Traceback" not in shown[0] and "\n" not in shown[0]
    assert not re.search(r"(^|\s)--\w", " ".join(_messages(prop))), f"a CLI flag in App text: {_messages(prop)}"
    with pytest.raises(Exception, match=re.escape(message)):
        result = foo.execute_operator(f"{PLUGIN}/{operator}", dict(dataset=ds), params=params)
        result.raise_exceptions()


def test_forms_check_what_a_scheduled_run_would_fail_on(ds, tmp_path):
    """Before scheduling: an output folder the server cannot write, a checkpoint that does not load."""
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    for operator, name, label in (("train_model", "out_dir", "Model directory"),
                                  ("evaluate_genres", "out_dir", "Plot folder"),
                                  ("extract_features", "cache_dir", "Cache folder")):
        field = _op(operator).resolve_input(_ctx(ds, {name: str(a_file / "run")})).type.properties[name]
        assert field.invalid and field.error_message == f"{label}: {a_file} is a file on the App server, not a folder"
    broken = tmp_path / "broken_model"
    broken.mkdir()
    (broken / "best.pt").write_bytes(b"not a checkpoint")
    field = _op("predict_genres").resolve_input(_ctx(ds, {"model_dir": str(broken)})).type.properties["model_dir"]
    assert field.invalid and "not a readable checkpoint" in field.error_message, field.error_message
    assert field.error_message.startswith("Model directory: ")


def test_sdk_wrappers_come_from_the_forms(ds):
    """One generated ``__call__``: the form's fields are its keywords; an unknown one is refused by name."""
    for name in ("predict_genres", "evaluate_genres", "open_confusion_view", "compute_genre_maps"):
        mro = type(_op(name)).__mro__  # FiftyOne loads the plugin under its own module names
        assert any(c.__name__ == "FormOperator" for c in mro), name
        assert not any("__call__" in vars(c) for c in mro if c.__name__ != "FormOperator" and c is not object), name
    fields = _op("compute_genre_maps").fields(ds)
    assert {"brain_key", "similarity_key", "mistakenness", "hardness"} <= set(fields)
    with pytest.raises(TypeError, match="no field brainkey; its form has: .*brain_key"):
        _op("compute_genre_maps")(ds, brainkey="x")
    with pytest.raises(TypeError, match="positional"):
        _op("compute_genre_maps")(ds, "x")


def test_forms_read_the_dataset(split_clone, tmp_path):
    """Defaults come from what was recorded; replacing a split or an evaluation is announced."""
    import json

    form = _op("evaluate_genres").resolve_input(_ctx(split_clone, {}))
    props = form.type.properties
    assert props["split"].default == "test" and props["eval_key"].default == "genre_eval_test"
    assert g.PRED_FIELD not in props["gt_field"].type.values
    evaluate(split_clone, split="test", out_dir=tmp_path)
    text = json.dumps(_op("evaluate_genres").resolve_input(_ctx(split_clone, {})).to_json())
    assert "Replaces the evaluation 'genre_eval_test'" in text
    split_clone.info[g.SPLIT_INFO_KEY] = {"ratios": [0.6, 0.2, 0.2], "seed": 3, "keep_official_test": False}
    split_clone.save()
    form = _op("split_dataset").resolve_input(_ctx(split_clone, {}))
    props = form.type.properties
    assert (props["train"].default, props["seed"].default) == (0.6, 3)
    assert "Replaces the current split" in json.dumps(form.to_json())
    feats = _op("extract_features").resolve_input(_ctx(split_clone, {})).type.properties
    recorded = split_clone.info[g.FEATURES_INFO_KEY]["config"]
    assert feats["backbone"].default == recorded["backbone"]
    assert feats["image_size"].default == recorded["image_size"]
    maps = json.dumps(_op("compute_genre_maps").resolve_input(_ctx(split_clone, {})).to_json())
    assert "clip(s) with embeddings will be mapped" in maps
    for name in ("predict_genres", "evaluate_genres", "compute_genre_maps", "split_dataset", "extract_features"):
        fields = _op(name).resolve_input(_ctx(split_clone, {})).type.properties
        for key, p in fields.items():
            view = p.view.to_json() if p.view is not None else {}
            if view.get("name") in ("MarkdownView", "Notice", "Warning", "Error"):
                continue
            if p.type.__class__.__name__ in ("String", "Number", "Boolean", "Enum") and key != "view_target":
                assert view.get("description"), f"{name}.{key} has no description"


def test_app_command_enables_delegated_runs():
    from fiftyone_genre.cli import build_parser
    from fiftyone_genre.cli.app import delegation_env

    assert delegation_env({})["FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS"] == "true"
    args = build_parser().parse_args(["app", "--dataset", "x"])
    assert args.executor is True
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    app_target = makefile.split("\napp:", 1)[1].split("\n\n", 1)[0]
    assert "FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS=true" in app_target and "cli app" in app_target
    for name in ("extract_features", "train_model", "compute_genre_maps"):
        assert _op(name).config.default_choice_to_delegated, name


def test_immediate_runs_in_the_app_stream_live_progress(ds):
    """In the App an immediate run yields its stage labels while it works, then reload, toast and output."""
    from fiftyone.operators.executor import ExecutionContext, Executor

    request = {
        "dataset_name": ds.name, "view": ds.view()._serialize(), "current_sample": None,
        "params": {"model_dir": str(assets().model_dir), "device": "cpu"},
    }
    ctx = ExecutionContext(request_params=request, executor=Executor())
    op = _op("predict_genres")
    assert op.config.execute_as_generator
    messages = [m.body for m in op.execute(ctx)]
    names = [m.operator_uri.split("/")[-1] for m in messages]
    progress = [m.params for m in messages if m.operator_uri.endswith("set_progress")]
    assert progress and all("label" in p and 0.0 <= p["progress"] <= 1.0 for p in progress), names
    assert names[-3:] == ["reload_dataset", "notify", "show_output"], names
    assert messages[-1].params["results"]["num_predicted"] == len(ds.exists(g.PRED_FIELD))
