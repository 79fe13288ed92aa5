"""Gatewatch analysis: pure computations on DataFrames (DORA, pipeline metrics, canary, SLOs); no I/O."""
