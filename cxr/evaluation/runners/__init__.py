"""Runners of the model-based scorers, one module per package scorer (see cxr.evaluation.scorers)."""
