"""Evaluation: classification metrics at deployment prevalence, generative quality (the
audit, the particle encoder), morphology."""
