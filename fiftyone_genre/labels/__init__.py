"""Stage 2, labels: action labels -> genres, hand relabels, and splits without leakage.

``mapping`` reads mapping files (shipped ones in ``mappings/``), ``remap``
applies them to a dataset, ``relabel`` records hand corrections with an
audit trail, ``split`` assigns train/val/test by source group and
``leakage`` checks that no group or identical file straddles two splits.
"""
