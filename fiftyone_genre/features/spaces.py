"""Feature spaces: which features a model reads, where a sample's features are found, who is refused.

A model is trained in one feature space and recorded with it
(``experiment.features.space`` in its checkpoint):

* ``extractor``: this project's CNNs run over the sample's video file
  (:mod:`fiftyone_genre.features.extractor`); features are keyed by the file path
  in the per-clip cache and its pack.
* ``yt8m-video``: YouTube-8M's own video-level features (PCA'd Inception-v3
  ``mean_rgb`` 1,024 + VGGish ``mean_audio`` 128), one step per record.
* ``yt8m-frame``: YouTube-8M's frame-level features, one step per second.

The YouTube-8M spaces are written once by the import into one pack per space
(:mod:`fiftyone_genre.modeling.yt8m_store`), keyed ``yt8m:<id>``. The two
YouTube-8M spaces have the same sizes as each other (and could match an
extractor's by chance), so sizes cannot tell them apart: the space can. A
sample from another space is refused with one sentence (:func:`refusal`),
never scored with features it was not trained on.
"""

from __future__ import annotations

from fiftyone_genre.config import FeaturesConfig

EXTRACTOR = "extractor"
YT8M_VIDEO = "yt8m-video"
YT8M_FRAME = "yt8m-frame"
SPACES: tuple[str, ...] = (EXTRACTOR, YT8M_VIDEO, YT8M_FRAME)
#: The YouTube-8M spaces by record level (a record's level decides its pack).
YT8M_SPACES: dict[str, str] = {"video": YT8M_VIDEO, "frame": YT8M_FRAME}

DESCRIPTIONS: dict[str, str] = {
    EXTRACTOR: "features this project extracts from the video file",
    YT8M_VIDEO: "YouTube-8M video-level features (PCA'd Inception-v3 + VGGish, one 1,152-d step per video)",
    YT8M_FRAME: "YouTube-8M frame-level features (PCA'd Inception-v3 + VGGish, one step per second)",
}


def space_of(features: FeaturesConfig | None) -> str:
    """The feature space of an experiment's features section (old checkpoints: the extractor)."""
    return getattr(features, "space", None) or EXTRACTOR


def is_yt8m(space: str) -> bool:
    return space in (YT8M_VIDEO, YT8M_FRAME)


def yt8m_key(yt8m_id: str) -> str:
    """The pack key of a YouTube-8M record's features."""
    return f"yt8m:{yt8m_id}"


def feature_key(space: str, filepath: str, yt8m_id: str | None, features_only: bool | None) -> str | None:
    """Where a sample's features live in ``space``: its file path, its record key, or None (none there)."""
    if is_yt8m(space):
        return yt8m_key(yt8m_id) if yt8m_id else None
    return None if features_only else filepath


def refusal(space: str, yt8m_id: str | None, features_only: bool | None) -> str | None:
    """The one sentence a model of ``space`` says to a sample from another space, or None."""
    if is_yt8m(space) and not yt8m_id:
        return (
            f"not a YouTube-8M record: this model reads {DESCRIPTIONS[space]}, "
            "which only imported YouTube-8M records have"
        )
    if space == EXTRACTOR and features_only:
        return (
            "features-only YouTube-8M sample (no video file): this model reads features extracted "
            "from video; train one with the yt8m config for these samples"
        )
    return None


def level_name(space: str) -> str:
    """``video-level`` or ``frame-level``: how YouTube-8M names the features of a space."""
    return "video-level" if space == YT8M_VIDEO else "frame-level"


def missing_reason(space: str) -> str:
    """What to say when a record of the right kind has no features stored in ``space``."""
    level = level_name(space)
    return (
        f"no YouTube-8M {level} features stored for this record "
        f"(import its {level} shards with `fiftyone-genre import yt8m`)"
    )


def file_refusal(space: str) -> str | None:
    """Why a model of ``space`` cannot score a loose video file (``classify``), or None when it can."""
    if is_yt8m(space):
        return f"this model reads {DESCRIPTIONS[space]}, which cannot be computed from a video file"
    return None
