"""Old name of :mod:`support.media`, kept importable while tests move over (to be deleted)."""

from support.media import grey_of, index_of, streams, write_audio_only, write_video  # noqa: F401
