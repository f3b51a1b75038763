"""Old name of :mod:`support.feature_data`, kept importable while tests move over (to be deleted)."""

from support.feature_data import *  # noqa: F403
