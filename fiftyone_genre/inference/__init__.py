"""Stage 5, inference: a trained model applied to samples and files.

``scoring`` turns a clip's features into window and video probabilities
(shared by everything here), ``predict`` writes predictions, timelines and
embeddings onto a dataset, ``classify`` scores loose files, ``fo_model`` is
the model as a FiftyOne ``Model`` and ``zoo`` publishes models as a zoo source.
"""
