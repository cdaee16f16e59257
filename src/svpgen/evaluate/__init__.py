"""Evaluation: classification metrics, generative quality, morphology, QC counts."""
