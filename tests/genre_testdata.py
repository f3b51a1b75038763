"""Old name of :mod:`support.model_assets`, kept importable while tests move over (to be deleted)."""

from support.model_assets import *  # noqa: F403
from support.model_assets import _train  # noqa: F401
