"""Calibration of predicted probabilities (UDL §5.4: a Bernoulli model's λ = Pr(y=1|x)).

A model is calibrated when, among the inputs it gives probability about λ, a fraction
λ of labels is 1. The expected calibration error bins the predictions and weights
each bin's gap |mean prediction - fraction of ones| by its share of the data.
"""

from __future__ import annotations

import numpy as np

from udl.validate import check_int

__all__ = ["calibration_gaps", "expected_calibration_error"]


def calibration_gaps(prob, y, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin gaps ``|mean(prob) - mean(y)|`` and counts, over ``n_bins`` equal bins of [0, 1].

    Empty bins are left out. Returns ``(gaps, counts)``.
    """
    check_int(n_bins, "n_bins", "calibration_gaps")
    prob, y = np.asarray(prob, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if prob.shape != y.shape or prob.size == 0:
        raise ValueError(f"prob and y must be non-empty and of one length; got {prob.size} and {y.size}")
    if prob.min() < 0 or prob.max() > 1:
        raise ValueError("prob must lie in [0, 1]")
    bins = np.minimum((prob * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    mean_prob = np.bincount(bins, weights=prob, minlength=n_bins)
    mean_y = np.bincount(bins, weights=y, minlength=n_bins)
    full = counts > 0
    gaps = np.abs(mean_prob[full] - mean_y[full]) / counts[full]
    return gaps, counts[full]


def expected_calibration_error(prob, y, n_bins: int = 10) -> float:
    """``Σ_b (n_b / N) · |mean prediction_b - fraction of ones_b|``."""
    gaps, counts = calibration_gaps(prob, y, n_bins)
    return float(np.dot(gaps, counts) / counts.sum())
