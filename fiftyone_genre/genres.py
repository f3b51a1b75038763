"""The genre label strings and the sample field names: the single source of truth.

Every other module (importers, remap, training, predict, the App operators)
imports these names instead of spelling strings, so a typo cannot silently
create a seventh class or a second ground-truth field.
"""

from __future__ import annotations

ACTION = "Action"
ANIMATION = "Animation"
HORROR = "Horror"
ROMANCE = "Romance"
SPORTS = "Sports"
SCIENCE_FICTION = "Science Fiction"

#: The paper's six genres, in the canonical order used for class indices.
GENRES: tuple[str, ...] = (ACTION, ANIMATION, HORROR, ROMANCE, SPORTS, SCIENCE_FICTION)

# --- sample fields written by the importers (the common schema) ---
SOURCE_FIELD = "source"  # str: "ucf101" | "hmdb51" | "hollywood2" | "yt8m" | "folder"
SOURCE_LABEL_FIELD = "source_label"  # fo.Classification or fo.Classifications
SOURCE_SPLIT_FIELD = "source_split"  # str: "train" | "test" | "unused"
GROUP_FIELD = "group"  # str: unit that must never straddle splits
ORIGINAL_PATH_FIELD = "original_filepath"  # str: set when media was re-encoded
YT8M_ID_FIELD = "yt8m_id"  # str: the YouTube-8M record id (its features are keyed "yt8m:<id>")
FEATURES_ONLY_FIELD = "features_only"  # bool: True when no video exists (a YouTube-8M record only)

# --- fields written by later stages ---
GENRE_FIELD = "genre"  # fo.Classification: the ground-truth genre (remap / relabel)
SPLIT_FIELD = "split"  # str: "train" | "val" | "test"
HAS_AUDIO_FIELD = "has_audio"  # bool: written by feature extraction
ERRORS_FIELD = "genre_errors"  # list[str]: per-sample failures, "<stage>: <reason>"
GENRE_HISTORY_FIELD = "genre_history"  # list[dict]: relabel audit trail (who/when/previous)
PRED_FIELD = "genre_pred"  # fo.Classification
TIMELINE_FIELD = "genre_timeline"  # fo.TemporalDetections
EMBEDDING_FIELD = "genre_embedding"  # vector
PRED_VISUAL_FIELD = "genre_pred_visual"
PRED_AUDIO_FIELD = "genre_pred_audio"

# --- tags ---
UNMAPPED_TAG = "genre:unmapped"
CONFLICT_TAG = "genre:conflict"
RELABELED_TAG = "genre:relabeled"
ERROR_TAG = "genre:error"
#: Samples with features but no video (YouTube-8M records); their filepath is a shared placeholder.
FEATURES_ONLY_TAG = "features-only"

# --- dataset.info keys ---
FEATURES_INFO_KEY = "genre_features"  # {cache_dir, config}
RUN_INFO_KEY = "genre_run"  # predict run info
REMAP_INFO_KEY = "genre_remap"  # {mappings, time}: what the last remap used
SPLIT_INFO_KEY = "genre_split"  # {seed, ratios, keep_official_test, time}
YT8M_VOCABULARY_INFO_KEY = "yt8m_vocabulary"  # absolute path of the imported vocabulary.csv
APP_INFO_KEY = "genre_app"  # the App settings app_config.show_genre_fields wrote (to never overwrite the user's)
YT8M_FEATURES_INFO_KEY = "yt8m_features"  # absolute path of the folder holding the YouTube-8M packs

#: Attributes of each YouTube-8M ``source_label`` Classification holding the
#: entity's Vertical1..3 from vocabulary.csv (set only when non-empty); remap's
#: vertical rules read them.
YT8M_VERTICAL_ATTRS: tuple[str, ...] = ("vertical1", "vertical2", "vertical3")

SPLITS: tuple[str, ...] = ("train", "val", "test")
