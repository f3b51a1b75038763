"""The App shows ground truth and prediction first, by name, and never overrides the user's own choices."""

from __future__ import annotations

from fiftyone_genre import genres as g
from fiftyone_genre.app_config import FIELD_COLORS, GENRE_GROUP, OTHER_GROUP, show_genre_fields


def _labelled(dataset, with_pred: bool = True):
    import fiftyone as fo

    fields = {
        "filepath": "/videos/a.mp4",
        g.GENRE_FIELD: fo.Classification(label=g.ACTION),
        g.SOURCE_LABEL_FIELD: fo.Classification(label="Punch"),
    }
    if with_pred:
        fields[g.PRED_FIELD] = fo.Classification(label=g.HORROR)
        fields[g.TIMELINE_FIELD] = fo.TemporalDetections(detections=[fo.TemporalDetection(label=g.HORROR, support=[1, 25])])
    dataset.add_sample(fo.Sample(**fields))
    return dataset


def _groups(dataset) -> dict[str, tuple[list[str], bool | None]]:
    return {gr.name: (list(gr.paths), gr.expanded) for gr in dataset.app_config.sidebar_groups}


def test_truth_and_prediction_first_the_rest_collapsed(dataset):
    ds = _labelled(dataset)
    assert show_genre_fields(ds) == ["active_fields", "sidebar_groups", "color_scheme"]
    config = ds.app_config
    assert config.active_fields.paths == [g.GENRE_FIELD, g.PRED_FIELD]
    groups = _groups(ds)
    # the timeline sits next to them, unticked: one tick in a clip's modal puts its badge on the video
    assert list(groups)[0] == GENRE_GROUP
    assert groups[GENRE_GROUP] == ([g.GENRE_FIELD, g.PRED_FIELD, g.TIMELINE_FIELD], True)
    other, expanded = groups[OTHER_GROUP]
    assert expanded is False and other == [g.SOURCE_LABEL_FIELD]
    assert config.color_scheme.color_by == "field"
    assert {f["path"]: f["fieldColor"] for f in config.color_scheme.fields} == FIELD_COLORS
    assert show_genre_fields(ds) == [], "a second call changes nothing"


def test_later_fields_join_the_settings_written_before(dataset):
    """remap writes the truth first; predict's fields join the groups remap's call wrote."""
    import fiftyone as fo

    ds = _labelled(dataset, with_pred=False)
    show_genre_fields(ds)
    assert ds.app_config.active_fields.paths == [g.GENRE_FIELD]
    ds.set_values(g.PRED_FIELD, [fo.Classification(label=g.ACTION)])
    assert "active_fields" in show_genre_fields(ds)
    assert _groups(ds)[GENRE_GROUP][0] == [g.GENRE_FIELD, g.PRED_FIELD]
    assert ds.app_config.active_fields.paths == [g.GENRE_FIELD, g.PRED_FIELD]
    assert g.SOURCE_LABEL_FIELD in _groups(ds)[OTHER_GROUP][0]


def test_the_users_own_choices_are_kept(dataset):
    import fiftyone as fo

    ds = _labelled(dataset)
    ds.app_config.active_fields = fo.ActiveFields(paths=[g.SOURCE_LABEL_FIELD])
    ds.app_config.color_scheme = fo.ColorScheme(color_by="value")
    ds.save()
    assert show_genre_fields(ds) == ["sidebar_groups"]
    assert ds.app_config.active_fields.paths == [g.SOURCE_LABEL_FIELD]
    assert ds.app_config.color_scheme.color_by == "value"

    # the user rearranges the sidebar in the App after we set it: a later run leaves it
    groups = ds.app_config.sidebar_groups
    groups[0], groups[1] = groups[1], groups[0]
    ds.app_config.sidebar_groups = groups
    ds.save()
    before = _groups(ds)
    assert show_genre_fields(ds) == []
    assert _groups(ds) == before

    assert set(show_genre_fields(ds, reset=True)) == {"active_fields", "sidebar_groups", "color_scheme"}
    assert ds.app_config.active_fields.paths == [g.GENRE_FIELD, g.PRED_FIELD]


def test_nothing_to_show_before_remap(dataset):
    import fiftyone as fo

    dataset.add_sample(fo.Sample(filepath="/videos/a.mp4", source_label=fo.Classification(label="Punch")))
    assert show_genre_fields(dataset) == []
    assert dataset.app_config.active_fields is None and g.APP_INFO_KEY not in dataset.info
