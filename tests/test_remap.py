"""remap / relabel / undo on small datasets built by hand, plus the CLI and operators."""

from __future__ import annotations

import fiftyone as fo
import pytest

from fiftyone_genre import genres as g
from fiftyone_genre.config import ConfigError
from fiftyone_genre.labels.relabel import relabel, undo_relabel
from fiftyone_genre.labels.remap import remap


def _clf(*labels: str, **attrs) -> fo.Classifications:
    return fo.Classifications(classifications=[fo.Classification(label=x, **attrs) for x in labels])


def add(dataset, tmp_path, rows):
    """rows: (source, labels tuple or single str, group) -> samples with tiny dummy files."""
    samples = []
    for i, (source, labels, group) in enumerate(rows):
        path = tmp_path / f"clip{len(dataset) + i:04d}.mp4"
        path.write_bytes(f"clip {len(dataset) + i}".encode())
        value = _clf(*labels) if isinstance(labels, tuple) else fo.Classification(label=labels)
        samples.append(fo.Sample(filepath=str(path), source=source, source_label=value, group=group))
    dataset.add_samples(samples)
    return dataset


def by_class(dataset) -> dict[str, tuple[str | None, list[str]]]:
    out = {}
    for s in dataset.select_fields([g.GENRE_FIELD, g.SOURCE_LABEL_FIELD]):
        v = s[g.SOURCE_LABEL_FIELD]
        key = "+".join(c.label for c in v.classifications) if hasattr(v, "classifications") else v.label
        out[key] = (s[g.GENRE_FIELD].label if s[g.GENRE_FIELD] else None, list(s.tags))
    return out


@pytest.fixture
def ucf(dataset, tmp_path):
    rows = [
        ("ucf101", "Punch", "ucf101:Punch_g01"),
        ("ucf101", "Basketball", "ucf101:Basketball_g01"),
        ("ucf101", "Typing", "ucf101:Typing_g01"),
        ("ucf101", "ApplyEyeMakeup", "ucf101:ApplyEyeMakeup_g02"),
    ]
    return add(dataset, tmp_path, rows)


def test_default_mapping_per_source_and_source_label_untouched(ucf):
    before = [c.to_dict() for c in ucf.values(g.SOURCE_LABEL_FIELD)]
    report = remap(ucf)
    assert by_class(ucf) == {
        "Punch": (g.ACTION, []),
        "Basketball": (g.SPORTS, []),
        "Typing": (None, [g.UNMAPPED_TAG]),
        "ApplyEyeMakeup": (None, [g.UNMAPPED_TAG]),
    }
    assert [c.to_dict() for c in ucf.values(g.SOURCE_LABEL_FIELD)] == before
    assert len(ucf) == 4  # unmapped clips stay
    assert report.counts == {g.ACTION: 1, g.SPORTS: 1}
    assert report.unmapped_classes == {"Typing": 1, "ApplyEyeMakeup": 1}
    assert report.unmapped_clips == 2 and report.changed == 4
    assert report.warnings == []  # shipped maps list every class: no typo noise
    assert "ucf101" in ucf.info[g.REMAP_INFO_KEY]["mappings"]
    # re-running is idempotent
    again = remap(ucf)
    assert again.changed == 0 and by_class(ucf)["Typing"] == (None, [g.UNMAPPED_TAG])


def test_dry_run_writes_nothing_and_reports(ucf):
    report = remap(ucf, dry_run=True)
    assert g.GENRE_FIELD not in ucf.get_field_schema()
    assert ucf.count_sample_tags() == {}
    assert report.dry_run and report.counts == {g.ACTION: 1, g.SPORTS: 1}
    assert report.unmapped_classes == {"Typing": 1, "ApplyEyeMakeup": 1}
    text = str(report)
    assert "dry run" in text and "Typing: 1" in text and "Action" in text
    # after a real remap, a dry run with another mapping still changes nothing
    remap(ucf)
    state = by_class(ucf)
    remap(ucf, mapping={"Punch": g.HORROR}, dry_run=True)
    assert by_class(ucf) == state


def test_multilabel_conflict_follows_priority_and_is_tagged(dataset, tmp_path):
    add(
        dataset,
        tmp_path,
        [
            ("hollywood2", ("Kiss", "FightPerson"), "hollywood2:movie1"),
            ("hollywood2", ("FightPerson", "INT-Car"), "hollywood2:movie2"),
            ("hollywood2", ("Kiss", "HugPerson", "INT-Bedroom"), "hollywood2:movie3"),
            ("hollywood2", ("DriveCar", "EXT-Road"), "hollywood2:movie4"),
        ],
    )
    report = remap(dataset)
    result = by_class(dataset)
    assert result["Kiss+FightPerson"] == (g.ROMANCE, [g.CONFLICT_TAG])  # Romance before Action
    assert result["FightPerson+INT-Car"] == (g.ACTION, [])  # unmapped labels never conflict
    assert result["Kiss+HugPerson+INT-Bedroom"] == (g.ROMANCE, [])  # same genre: no conflict
    assert result["DriveCar+EXT-Road"] == (None, [g.UNMAPPED_TAG])
    assert report.conflict_clips == 1
    assert report.conflicts == {"Action | Romance -> Romance": 1}
    conflict = dataset.match_tags(g.CONFLICT_TAG).first()
    assert conflict[g.GENRE_FIELD]["candidates"] == [g.ACTION, g.ROMANCE]
    assert report.unmapped_classes == {"DriveCar": 1, "EXT-Road": 1}
    assert report.ignored_classes == {"INT-Car": 1, "INT-Bedroom": 1}


def test_user_mapping_typo_warning_and_new_genre(ucf, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("genres: [Documentary]\nmap:\n  Punch: Action\n  Typng: Documentary\n  Basketbal: Sports\n")
    report = remap(ucf, mapping=path)
    assert report.unused_keys[str(path)] == ["Basketbal", "Typng"]
    warning = " ".join(report.warnings)
    assert "'Typng' (did you mean 'Typing'?)" in warning
    assert "'Basketbal' (did you mean 'Basketball'?)" in warning
    assert by_class(ucf)["Punch"][0] == g.ACTION
    assert by_class(ucf)["Typing"][0] is None  # the typo maps nothing
    path.write_text("genres: [Documentary]\nmap:\n  Typing: Documentary\n")
    remap(ucf, mapping=path)
    assert by_class(ucf)["Typing"] == ("Documentary", [])


def test_bad_mapping_files_fail_before_writing(ucf, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("Punch: {genre: Action}\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: key 'Punch'"):
        remap(ucf, mapping=path)
    path.write_text("map:\n  Punch: Action\n bad indent\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml.*not valid YAML"):
        remap(ucf, mapping=path)
    assert g.GENRE_FIELD not in ucf.get_field_schema()


def test_folder_source_maps_genre_names_to_themselves(dataset, tmp_path):
    add(
        dataset,
        tmp_path,
        [
            ("folder", "Animation", "folder:a"),
            ("folder", "science_fiction", "folder:b"),
            ("folder", "holiday", "folder:c"),
        ],
    )
    report = remap(dataset)
    assert by_class(dataset) == {
        "Animation": (g.ANIMATION, []),
        "science_fiction": (g.SCIENCE_FICTION, []),
        "holiday": (None, [g.UNMAPPED_TAG]),
    }
    assert report.unmapped_classes == {"holiday": 1}


def test_yt8m_verticals_from_label_attributes_or_vocabulary(dataset, tmp_path):
    samples = [
        fo.Sample(
            filepath=str(tmp_path / "a.mp4"),
            source="yt8m",
            source_label=fo.Classifications(
                classifications=[
                    fo.Classification(label="Football", vertical1="Sports"),
                    fo.Classification(label="FIFA 15", vertical1="Games", vertical2="Sports"),
                ]
            ),
        ),
        fo.Sample(filepath=str(tmp_path / "b.mp4"), source="yt8m", source_label=_clf("Tennis")),
        fo.Sample(filepath=str(tmp_path / "c.mp4"), source="yt8m", source_label=_clf("Cartoon", "Tennis")),
    ]
    dataset.add_samples(samples)
    report = remap(dataset, dry_run=True)
    # FIFA 15 (vertical1 Games) vetoes its record: football gameplay is not sport footage
    assert report.counts == {g.ANIMATION: 1}
    assert report.vetoed_clips == 1 and report.vetoed_by == {"FIFA 15": 1}
    assert "vetoed: 1 clips left unmapped by a veto class: FIFA 15 (1)" in str(report)
    assert any("no verticals" in w for w in report.warnings)
    vocab = tmp_path / "vocabulary.csv"
    vocab.write_text(
        "Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl,Vertical1,Vertical2,Vertical3,WikiDescription\n"
        '0,100,/m/07bs0,Tennis,https://x,Sports,,,"a sport"\n'
    )
    dataset.info["yt8m_vocabulary"] = str(vocab)
    dataset.save()
    remap(dataset)
    assert dataset.values(f"{g.GENRE_FIELD}.label") == [None, g.SPORTS, g.ANIMATION]
    assert dataset.match_tags(g.UNMAPPED_TAG).count() == 1
    assert dataset.match_tags(g.CONFLICT_TAG).count() == 1  # Animation beats Sports


def test_a_veto_entity_leaves_the_record_without_a_genre(dataset, tmp_path):
    """Video-game footage is not a film genre: "Video game" beside "Cartoon" vetoes the record."""
    add(dataset, tmp_path, [
        ("yt8m", ("Cartoon", "Video game"), "yt8m:a"),
        ("yt8m", ("Cartoon",), "yt8m:b"),
        ("yt8m", ("Game", "Cartoon"), "yt8m:c"),  # "Game" alone is exempt: thousands of real sports records
    ])  # fmt: skip
    report = remap(dataset)
    assert by_class(dataset) == {
        "Cartoon+Video game": (None, [g.UNMAPPED_TAG]),
        "Cartoon": (g.ANIMATION, []),
        "Game+Cartoon": (g.ANIMATION, []),
    }
    assert report.vetoed_clips == 1 and report.vetoed_by == {"Video game": 1}
    assert report.counts == {g.ANIMATION: 2} and report.unmapped_clips == 1


def test_relabel_audit_trail_undo_and_rerun(ucf):
    remap(ucf)
    typing = ucf.match(fo.ViewField(f"{g.SOURCE_LABEL_FIELD}.label") == "Typing")
    punch = ucf.match(fo.ViewField(f"{g.SOURCE_LABEL_FIELD}.label") == "Punch")
    assert relabel(typing, g.HORROR, user="ana", reason="it is scary") == 1
    sample = typing.first()
    assert sample[g.GENRE_FIELD].label == g.HORROR
    assert sample.tags == [g.RELABELED_TAG]  # unmapped tag gone: a person decided
    (entry,) = sample[g.GENRE_HISTORY_FIELD]
    assert entry["user"] == "ana" and entry["reason"] == "it is scary"
    assert entry["previous"] is None and entry["genre"] == g.HORROR
    assert entry["removed_tags"] == [g.UNMAPPED_TAG] and entry["time"].endswith("+00:00")
    assert relabel(punch, g.SPORTS, user="bo") == 1
    assert relabel(punch, g.ROMANCE, user="cy") == 1
    assert [e["user"] for e in punch.first()[g.GENRE_HISTORY_FIELD]] == ["bo", "cy"]

    # a re-run of remap keeps the hand labels
    report = remap(ucf)
    assert report.kept_relabeled == 2
    assert by_class(ucf)["Typing"] == (g.HORROR, [g.RELABELED_TAG])
    assert by_class(ucf)["Punch"][0] == g.ROMANCE

    # undo walks back one step at a time
    assert undo_relabel(punch) == 1
    assert by_class(ucf)["Punch"] == (g.SPORTS, [g.RELABELED_TAG])
    assert undo_relabel(ucf) == 2  # the latest step of each relabeled sample
    assert by_class(ucf)["Punch"] == (g.ACTION, [])
    assert by_class(ucf)["Typing"] == (None, [g.UNMAPPED_TAG])
    assert undo_relabel(ucf) == 0

    # unknown genres are refused unless asked for (typos)
    with pytest.raises(ValueError, match="unknown genre 'Horor'"):
        relabel(typing, "Horor")
    assert relabel(typing, "Documentary", allow_new_genre=True) == 1


def test_overwrite_relabeled_is_recorded_and_undoable(ucf):
    remap(ucf)
    punch = ucf.match(fo.ViewField(f"{g.SOURCE_LABEL_FIELD}.label") == "Punch")
    relabel(punch, g.HORROR, user="ana")
    report = remap(ucf, overwrite_relabeled=True)
    assert report.kept_relabeled == 0
    sample = punch.first()
    assert sample[g.GENRE_FIELD].label == g.ACTION and sample.tags == []
    assert [e["user"] for e in sample[g.GENRE_HISTORY_FIELD]] == ["ana", "remap"]
    undo_relabel(punch)
    assert punch.first()[g.GENRE_FIELD].label == g.HORROR
    assert punch.first().tags == [g.RELABELED_TAG]


# --- CLI ---------------------------------------------------------------------


def test_cli_remap_relabel(ucf, tmp_path, capsys):
    from fiftyone_genre.cli import main

    assert main(["remap", "--dataset", ucf.name, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "Typing: 1" in out
    assert g.GENRE_FIELD not in ucf.get_field_schema()
    assert main(["remap", "--dataset", ucf.name]) == 0
    ids = ucf.match_tags(g.UNMAPPED_TAG).values("id")
    assert main(["relabel", "--dataset", ucf.name, "--genre", g.HORROR, "--ids", *ids, "--user", "cli"]) == 0
    assert set(ucf.match_tags(g.RELABELED_TAG).values("id")) == set(ids)
    assert main(["relabel", "--dataset", ucf.name, "--undo", "--tag", g.RELABELED_TAG]) == 0
    assert set(ucf.match_tags(g.UNMAPPED_TAG).values("id")) == set(ids)
    bad = tmp_path / "bad.yaml"
    bad.write_text("Punch: 7\n")
    assert main(["remap", "--dataset", ucf.name, "--mapping", str(bad)]) == 2
    assert "bad.yaml: key 'Punch'" in capsys.readouterr().err
    assert main(["remap", "--dataset", "no-such-dataset-xyz"]) == 2


# --- operators -----------------------------------------------------------------


def _ctx(dataset, params, selected=None):
    from fiftyone.operators.executor import ExecutionContext, Executor

    request = {"dataset_name": dataset.name, "params": dict(params)}
    if selected:
        request["selected"] = list(selected)
        request["view_target"] = "SELECTED_SAMPLES"
    return ExecutionContext(request_params=request, executor=Executor())


def _form_text(prop) -> str:
    import json

    return json.dumps(prop.to_json())


def test_remap_operator_preview_and_execute(ucf):
    from operators.labels import RemapGenres

    op = RemapGenres()
    ctx = _ctx(ucf, {})
    form = _form_text(op.resolve_input(ctx))
    assert "dry run" in form and "Typing: 1" in form  # the preview is in the form
    assert g.GENRE_FIELD not in ucf.get_field_schema()
    result = op.execute(_ctx(ucf, {}))
    assert result["counts"] == {g.ACTION: 1, g.SPORTS: 1}
    assert ucf.count_values(f"{g.GENRE_FIELD}.label") == {g.ACTION: 1, g.SPORTS: 1, None: 2}
    bad_form = _form_text(op.resolve_input(_ctx(ucf, {"mapping": "/nonexistent/map.yaml"})))
    assert "no such mapping file" in bad_form


def test_relabel_operator_acts_on_selection(ucf):
    from operators.labels import RelabelSamples

    remap(ucf)
    ids = ucf.match_tags(g.UNMAPPED_TAG).values("id")
    op = RelabelSamples()
    form = _form_text(op.resolve_input(_ctx(ucf, {}, selected=ids)))
    assert "2 samples" in form and g.SCIENCE_FICTION in form
    result = op.execute(_ctx(ucf, {"genre": g.HORROR, "user": "app", "reason": "lasso"}, selected=ids))
    assert result["count"] == 2
    assert set(ucf.match_tags(g.RELABELED_TAG).values("id")) == set(ids)
    assert ucf.count_values(f"{g.GENRE_FIELD}.label")[g.HORROR] == 2
    op.execute(_ctx(ucf, {"action": "undo"}, selected=ids[:1]))
    assert ucf.count_values(f"{g.GENRE_FIELD}.label")[g.HORROR] == 1
    placement = op.resolve_placement(_ctx(ucf, {})).to_json()
    assert placement["place"] == "samples-grid-secondary-actions"


def test_operators_through_execute_operator(ucf):
    """The SDK ``__call__`` path: FiftyOne loads the plugin and validates params."""
    import fiftyone.operators as foo

    remap_op = foo.get_operator("@fiftyone-genre/genre/remap_genres")
    result = remap_op(ucf, dry_run=True)
    assert result.result["counts"] == {g.ACTION: 1, g.SPORTS: 1}
    assert g.GENRE_FIELD not in ucf.get_field_schema()
    remap_op(ucf)
    relabel_op = foo.get_operator("@fiftyone-genre/genre/relabel_samples")
    view = ucf.match_tags(g.UNMAPPED_TAG)
    relabel_op(view, genre=g.ANIMATION, user="sdk")
    assert ucf.count_values(f"{g.GENRE_FIELD}.label")[g.ANIMATION] == 2


# --- on real synthetic imports ---------------------------------------------------


def test_remap_and_split_on_synthetic_imports(dataset, tmp_path):
    """synth -> importers -> remap -> split -> leakage check, genres as the manifest says."""
    from fiftyone_genre.config import SplitConfig
    from fiftyone_genre.demo import synth
    from fiftyone_genre.labels.leakage import check_leakage
    from fiftyone_genre.labels.mapping import load_mapping
    from fiftyone_genre.labels.split import split_dataset
    from fiftyone_genre.sources import import_source

    manifests = {}
    for layout in ("ucf101", "hollywood2"):
        manifests[layout] = synth.generate(
            tmp_path / layout, layout=layout, clips_per_class=2, duration=0.6, size=(48, 32), seed=1
        )
        import_source(layout, dataset, tmp_path / layout, compute_metadata=False)
    assert len(dataset) == sum(len(m.importable()) for m in manifests.values())
    by_path = {**manifests["ucf101"].by_path(), **manifests["hollywood2"].by_path()}

    # the shipped defaults: each clip gets what its source classes map to
    report = remap(dataset)
    defaults = {s: load_mapping(s) for s in manifests}
    for path, source, genre in zip(
        _media_paths(dataset), dataset.values(g.SOURCE_FIELD), dataset.values(f"{g.GENRE_FIELD}.label")
    ):
        clip = by_path[path]
        m = defaults[source]
        mapped = {m.resolve(x) for x in clip.labels} - {None}
        assert genre == (m.choose(mapped) if mapped else None), (clip.labels, genre)
    assert report.unmapped_clips == dataset.match_tags(g.UNMAPPED_TAG).count()

    # the generator's own class -> genre table as a user mapping: every clip gets a genre
    table = {**manifests["ucf101"].classes, **manifests["hollywood2"].classes}
    report = remap(dataset, mapping=table)
    assert report.unmapped_clips == 0 and report.warnings == []
    single = dataset.match(fo.ViewField(g.SOURCE_FIELD) == "ucf101")
    for path, genre in zip(_media_paths(single), single.values(f"{g.GENRE_FIELD}.label")):
        assert genre == by_path[path].genre

    split_dataset(dataset, SplitConfig(seed=0, keep_official_test=True))
    check_leakage(dataset)


def _media_paths(collection) -> list[str]:
    """The generator's paths: ``original_filepath`` where the importer re-encoded."""
    originals = (
        collection.values(g.ORIGINAL_PATH_FIELD)
        if g.ORIGINAL_PATH_FIELD in collection.get_field_schema()
        else [None] * len(collection)
    )
    return [o or p for o, p in zip(originals, collection.values("filepath"))]
