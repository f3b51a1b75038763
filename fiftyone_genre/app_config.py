"""How the FiftyOne App shows a genre dataset by default: the truth and the prediction, by name.

Left alone, the App draws every label field on every tile: ``genre``,
``genre_pred``, its visual/audio twins, ``source_label`` and one chip per
timeline entry, all saying "Action" with no field name. The App (1.22) has no
setting that puts field names on the chips, so the dataset's App config
(``dataset.app_config``) makes the sidebar the legend instead:

- a first sidebar group **genre** holding ``genre`` (ground truth) and
  ``genre_pred`` (prediction), the only fields shown on tiles by default
  (``active_fields``), and ``genre_timeline`` unticked: in a clip's modal one
  tick shows its badge over the video, the genre at the playhead (FiftyOne
  1.22 cannot make a field active in the modal only: ``set_active_fields``
  from a modal panel changes the grid's fields);
- every other label field in a collapsed **other labels** group, one click
  away (tick a field there to show it);
- colours by field (``color_by="field"``): ground truth green, prediction
  orange, the timeline blue, on the chips and in the sidebar alike.

:func:`show_genre_fields` is called by the stages that create those fields
(``remap`` writes ``genre``, ``predict`` writes ``genre_pred`` and the
timeline). It never overwrites a choice of the user: each of the three
settings is written only while it is unset or still exactly what this
function wrote last time (recorded in ``dataset.info["genre_app"]``). A user
who rearranges the sidebar in the App, or saves their own colour scheme, keeps
it; ``reset=True`` takes the defaults back.
"""

from __future__ import annotations

from typing import Any

from fiftyone_genre import genres as g

#: The sidebar groups this module writes.
GENRE_GROUP = "genre"
OTHER_GROUP = "other labels"
#: Field -> colour (chips and sidebar). Green truth, orange prediction, blue timeline.
FIELD_COLORS: dict[str, str] = {
    g.GENRE_FIELD: "#2e7d32",
    g.PRED_FIELD: "#ff6d04",
    g.TIMELINE_FIELD: "#1f77b4",
}
_SETTINGS = ("active_fields", "sidebar_groups", "color_scheme")


def show_genre_fields(dataset, reset: bool = False) -> list[str]:
    """Make ``genre`` and ``genre_pred`` what the App shows first; returns the settings changed.

    Does nothing on a dataset that has neither field yet. Saves the dataset
    only when something changed.
    """
    shown = [f for f in (g.GENRE_FIELD, g.PRED_FIELD) if dataset.has_sample_field(f)]
    if not shown:
        return []
    first = shown + [f for f in (g.TIMELINE_FIELD,) if dataset.has_sample_field(f)]
    config = dataset.app_config
    written = dict(dataset.info.get(g.APP_INFO_KEY) or {})
    wanted = {
        "active_fields": _active_fields(shown),
        "sidebar_groups": _sidebar_groups(dataset, first),
        "color_scheme": _color_scheme(dataset),
    }
    changed = []
    for name in _SETTINGS:
        current = _plain(getattr(config, name))
        if not (reset or current is None or current == written.get(name)):
            continue  # the user's own choice
        value = _plain(wanted[name])
        written[name] = value
        if value != current:
            setattr(config, name, wanted[name])
            changed.append(name)
    if changed or written != (dataset.info.get(g.APP_INFO_KEY) or {}):
        dataset.info[g.APP_INFO_KEY] = written
        dataset.save()
    return changed


def _active_fields(shown: list[str]):
    import fiftyone as fo

    return fo.ActiveFields(paths=list(shown))


def _sidebar_groups(dataset, first: list[str]) -> list:
    """FiftyOne's default groups, with ``first`` in a group of their own and the other labels collapsed."""
    import fiftyone as fo

    groups = fo.DatasetAppConfig.default_sidebar_groups(dataset)
    out = [fo.SidebarGroupDocument(name=GENRE_GROUP, paths=list(first), expanded=True)]
    for group in groups:
        if group.name == "labels":
            group.name, group.expanded = OTHER_GROUP, False
            group.paths = [p for p in group.paths if p not in first]
        out.append(group)
    return out


def _color_scheme(dataset):
    import fiftyone as fo

    fields = [{"path": f, "fieldColor": c} for f, c in FIELD_COLORS.items() if dataset.has_sample_field(f)]
    return fo.ColorScheme(color_by="field", fields=fields)


def _plain(value: Any) -> Any:
    """A setting as plain data to compare (documents without their ids; None stays None)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "to_dict"):
        return {k: _plain(v) for k, v in value.to_dict().items() if k not in ("_id", "id", "_cls")}
    return value
