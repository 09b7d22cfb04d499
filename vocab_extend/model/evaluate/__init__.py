"""Evaluating models: bits per byte (:mod:`.bpb`, ``evaluate-bpb`` in :mod:`.cli`) and teacher-forced decode
speed (:mod:`.decode`)."""
