"""Test-support modules: generated fixtures the tests share (``from support.media import ...``).

One module per kind of fixture: ``media`` (tiny videos with known frames and
sounds), ``faults`` (defects planted into generated trees, the bad-input
corpus), ``feature_data`` (feature-cache datasets for data/train tests),
``model_assets`` (clips, planted features and trained models for the
predict/analysis tests).
"""
