"""Stage 3, features: each video decoded once into per-step CNN features, cached on disk.

``decode`` streams a video (``sampling`` picks the frame shown at each step,
``audio`` turns the soundtrack into aligned log-mel windows), ``backbones``
and ``engine`` build and run the CNNs, ``extractor`` runs decoding and the
CNNs together, ``cache`` stores one entry per video, and ``extract`` is the
stage over a dataset (:func:`extract_features`).
"""

from fiftyone_genre.features.extract import FeatureReport, extract_features, parse_shard

__all__ = ["FeatureReport", "extract_features", "parse_shard"]
