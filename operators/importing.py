"""App operator: import UCF101 / HMDB51 / Hollywood2 / YouTube-8M / a folder tree.

A thin shell over :func:`fiftyone_genre.sources.import_source`: the form asks
for the source type and the path (checked on the server before the run can
start), plus the options that source understands; the run can be delegated
because computing metadata over thousands of videos outlasts an immediate
operator's timeout.
"""

from __future__ import annotations

import os

import fiftyone.operators as foo
import fiftyone.operators.types as types

from .common import (
    Form,
    FormOperator,
    count_video_files,
    expand_path,
    finished,
    headline,
    live,
    path_problem,
    report_view,
)

SOURCE_CHOICES = (
    ("folder", "Folder tree (<label>/<video>)", "Any folder whose sub-folders are labels"),
    ("ucf101", "UCF101", "Folder holding UCF-101/ and ucfTrainTestlist/"),
    ("hmdb51", "HMDB51", "Action folders + *_test_splitN.txt files"),
    ("hollywood2", "Hollywood2", "Folder holding AVIClips/ and ClipSets/"),
    ("yt8m", "YouTube-8M", "vocabulary.csv + *.tfrecord; records without a local <id>.mp4 become features-only samples"),
)
FOLD_SOURCES = ("ucf101", "hmdb51")


def _source_fields(form: Form, source: str) -> None:
    """The options only some sources understand."""
    inputs = form.inputs
    if source in FOLD_SOURCES:
        inputs.enum("fold", [1, 2, 3], default=1, label="Fold",
                    description="Which official train/test split fills source_split",
                    view=types.RadioGroup(orientation="horizontal"))
    if source == "yt8m":
        form.field("str", "media_dir", path_problem(form.params.get("media_dir"), must_be_dir=True), label="Media folder",
                   description="Folder of downloaded videos named <id>.mp4 (default: <path>/videos)")
        inputs.bool("require_video", default=False, label="Only records with a local video",
                    description="Off: records without a video are imported features-only (trained with the yt8m config)",
                    view=types.CheckboxView())
    if source == "hollywood2":
        inputs.bool("autotrain", default=False, label="Include the automatic (noisy) train set",
                    description="Hollywood2's automatically labelled clips (more, noisier)", view=types.CheckboxView())


def _videos_root(form: Form, source: str) -> str | None:
    """Where the import will find the video files (YouTube-8M keeps them in a media folder)."""
    if source == "yt8m" and form.params.get("media_dir"):
        return expand_path(form.params["media_dir"])
    return expand_path(form.params.get("path"))


def build_import_form(form: Form) -> None:
    choices = types.Dropdown(label="Source type")
    for value, label, desc in SOURCE_CHOICES:
        choices.add_choice(value, label=label, description=desc)
    form.field("enum", "source", None, values=choices.values(), default="folder", required=True, label="Source type",
               description="The official layout of the folder to import", view=choices)
    source = form.params.get("source") or "folder"
    hint = dict((v, d) for v, _, d in SOURCE_CHOICES)[source]
    problem = path_problem(form.params.get("path"), must_be_dir=True)
    root = _videos_root(form, source) if problem is None else None
    n = count_video_files(root) if root and os.path.isdir(root) else None
    if n == 0 and source == "folder":
        problem = f"no video files under {root}."
    form.field("str", "path", problem, required=True, label="Path", description=f"Dataset root on the server machine. {hint}")
    _source_fields(form, source)
    form.inputs.bool("reencode", default=False, label="Re-encode to MP4",
                     description="AVI and other containers do not play in the browser; keeps original_filepath",
                     view=types.CheckboxView())
    features_only = source == "yt8m" and not form.params.get("require_video", False)
    if n == 0 and source != "folder" and not features_only:
        form.warn("no_videos", f"No video files found under {root}.", "The annotation files may name them elsewhere.")
    elif n and form.valid and form.ctx.dataset is not None:
        form.notice("found", f"{n} video file(s) under {root}; they are added to dataset "
                    f"'{form.ctx.dataset.name}' (files already imported are skipped).")


def _kwargs(params: dict) -> dict:
    source = params.get("source") or "folder"
    kw: dict = {"reencode": bool(params.get("reencode", False))}
    if source in FOLD_SOURCES:
        kw["fold"] = int(params.get("fold") or 1)
    if source == "yt8m" and params.get("media_dir"):
        kw["media_dir"] = expand_path(params["media_dir"])
    if source == "yt8m":
        kw["require_video"] = bool(params.get("require_video", False))
    if source == "hollywood2":
        kw["autotrain"] = bool(params.get("autotrain", False))
    return kw


class ImportVideos(FormOperator):
    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="import_videos",
            label="Genre: import videos",
            description="Import UCF101, HMDB51, Hollywood2, YouTube-8M or a folder tree into this dataset",
            icon="video_library",
            dynamic=True,
            execute_as_generator=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    form_builder = staticmethod(build_import_form)
    form_title = "Import videos"

    sdk_positional = ("source", "path")

    def execute(self, ctx):
        from fiftyone_genre.sources import import_source

        self.checked_form(ctx)
        params = ctx.params

        def work(progress) -> dict:
            report = import_source(
                params.get("source") or "folder", ctx.dataset, expand_path(params.get("path")),
                progress=progress, **_kwargs(params),
            )
            return {
                "summary": f"```\n{report}\n```",
                "headline": headline(report),
                "ok": report.ok,
                "imported": report.imported,
                "existing": report.existing,
                "features_only": report.features_only,
                "flagged": report.flagged,
                "skipped": sum(report.skipped.values()),
                "problems": len(report.problems),
            }

        return live(ctx, work, lambda r: r["headline"], lambda r: self.resolve_output(ctx),
                    variant=lambda r: "success" if r["ok"] else "error")

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("imported", label="New samples")
        outputs.int("existing", label="Already in the dataset")
        outputs.int("features_only", label="New features-only samples (no video)")
        outputs.int("flagged", label="Unreadable (flagged with genre:error)")
        outputs.int("skipped", label="Skipped entries")
        outputs.str("summary", label="Report", view=report_view())
        return finished(outputs, "Import")


OPERATORS = [ImportVideos]
