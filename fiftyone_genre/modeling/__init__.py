"""Stage 4, modeling: windows of cached features -> the CNN-LSTM, trained and checkpointed.

``windows`` cuts clips into fixed-length windows, ``packed`` keeps a
training set's features in one memory-mapped store, ``dataset`` turns
labelled samples into training windows, ``model`` is the CNN-LSTM and its
checkpoints, ``train`` the loop (resume, DDP), ``metrics`` its scores,
``ablation`` the fused / visual / audio comparison, and ``finetune`` the
paper's stage-1 frame classifier.
"""
