"""Expected calibration error against a hand computation."""

import numpy as np
import pytest

from udl.analysis.calibration import calibration_gaps, expected_calibration_error


def test_hand_computed_bins():
    prob = np.array([0.05, 0.15, 0.15, 0.95])
    y = np.array([0, 0, 1, 1])
    gaps, counts = calibration_gaps(prob, y, n_bins=10)
    np.testing.assert_allclose(gaps, [0.05, 0.35, 0.05])
    np.testing.assert_array_equal(counts, [1, 2, 1])
    assert expected_calibration_error(prob, y, 10) == pytest.approx((0.05 + 0.7 + 0.05) / 4)


def test_labels_drawn_from_the_predictions_are_calibrated():
    rng = np.random.default_rng(0)
    prob = rng.uniform(size=200_000)
    y = rng.uniform(size=prob.size) < prob
    assert expected_calibration_error(prob, y) < 0.005
    assert expected_calibration_error(np.clip(prob + 0.2, 0, 1), y) > 0.1


def test_bad_input():
    with pytest.raises(ValueError, match="n_bins"):
        calibration_gaps([0.5], [1], n_bins=0)
    with pytest.raises(ValueError, match="one length"):
        calibration_gaps([0.5, 0.2], [1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        calibration_gaps([1.5], [1])
