"""The demo: generated clips whose genre needs both picture and sound, and the `make demo` run.

``clips`` writes one clip per genre cue pair, ``synth`` lays clips out as
UCF101 / HMDB51 / Hollywood2 / YouTube-8M / folder trees, ``mediawriter`` is
the one PyAV writer, and ``pipeline`` runs every stage on them.
"""
