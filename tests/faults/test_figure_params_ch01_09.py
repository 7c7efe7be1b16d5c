"""Issue 12, items 4 and 8, for the figures of chapters 1, 3-6, 8, 9 and appendix C.

- 8: every number and list parameter declares its range; a value outside it, or values that do not fit
  together (a grid too coarse for 6.10's tolerance, a batch larger than the training rows, 6.2's panels
  changing more than one parameter, C.2's slices between grid rows), is refused by ``resolve`` in udl's
  one-line template before anything is computed, and ``udl figure --set`` exits 2 with that line.
- 4: checks that assumed a sweep's order (3.5's widths, 8.bias-variance's capacities, 9.2's λ, 6.2's
  panels, 6.hparams' learning rates) hold for the same values in any order; claims a run cannot test
  (one width, two capacities, an Adam run too short to arrive, 8.double-descent's peak at ``tiny``) are
  recorded as not tested instead of passed.
"""

import math
import re
import subprocess
import sys

import pytest

from udl.registry import Result, load_all
from udl.runner import record, run_figure

MODULES = ("ch01", "ch03", "ch04", "ch05", "ch06", "ch06_rules", "ch08", "ch08_mnist1d", "ch09", "ch09_ensembles",
           "ch09_transfer", "appc")
SPECS = {fig_id: spec for fig_id, spec in load_all().items() if spec.module.rsplit(".", 1)[-1] in MODULES}


def _message(fig_id: str, key: str) -> str:
    return rf"^The '{key}' parameter of figure {re.escape(fig_id)} must .+\. Got .+ instead\.$"


@pytest.mark.parametrize("fig_id, overrides, key, words", [
    ("3.5", {"widths": [1_000_000_000]}, "widths", r"ints in \[1, 256\]"),
    ("3.5", {"n_train": -5}, "n_train", r"an int in \[2, 10000\]"),
    ("3.1", {"span": math.nan}, "span", r"a float in"),
    ("6.2", {"phis": [0.0, 10.0, 5.0, 12.0, 0.0, 20.0]}, "phis", r"give panel b the φ1 of panel a and another φ0"),
    ("6.2", {"phis": [0.0, 10.0, 5.0, 10.0, 0.0, 10.0]}, "phis", r"give panel c the φ0 of panel a and another φ1"),
    ("6.2", {"phis": [0.0, -10.0, 5.0, -10.0, 0.0, 20.0]}, "phis", r"give every panel a positive φ1"),
    ("6.2", {"x_max": 9.0}, "x_max", r"exceed 10.83 for these phis"),
    ("6.2", {"n": 200}, "n", r"at least 277 for these phis and x_max"),
    ("6.5", {"starts": [1.0, 10.0, 2.0]}, "starts", r"hold pairs \(φ0, φ1\)\. Got 3 numbers"),
    ("6.5", {"starts": [1.0, 1.0]}, "starts", r"lie in φ0 ∈ \[-10, 10\], φ1 ∈ \[2.5, 22.5\]"),
    ("6.7", {"last": 50, "steps": 20}, "last", r"at most steps \+ 1 \(21\)"),
    ("6.8", {"start": [-1.5, 1.0]}, "start", r"lie in φ0"),
    ("6.10", {"grid": 101}, "grid", r"at least 2001 for tol=0.001"),
    ("6.hparams", {"batches": [32, 1024], "num_samples": 1000}, "batches", r"at most the 640 training rows"),
    ("8.mnist1d", {"batch_size": 100, "num_samples": 100}, "batch_size", r"at most the 80 training sequences"),
    ("8.mnist1d", {"eval_every": 2000}, "eval_every", r"at most steps / 4 \(1500\)"),
    ("8.cv", {"k": 20}, "k", r"at most n \(15\)"),
    ("9.6", {"batch_size": 20}, "batch_size", r"at most n \(15\)"),
    ("9.6", {"every": 50_000}, "every", r"at most steps \(40000\)"),
    ("9.9", {"unit": 13}, "unit", r"at most n_hidden - 2 \(12\)"),
    ("9.9", {"gap_lo": 0.01}, "gap_lo", r"at least 1/n \(0.06667\), so that data lie left of the gap"),
    ("9.9", {"gap_hi": 0.95}, "gap_hi", r"at most 1 - 1/n \(0.9333\)"),
    ("9.9", {"gap_lo": 0.6, "gap_hi": 0.5}, "gap_hi", r"greater than gap_lo \(0.6\)"),
    ("C.2", {"spacing": 0.15}, "spacing", r"divide 1 .+ so that y = 3 and y = -1 are grid rows"),
])
def test_values_that_do_not_fit_together_are_refused(fig_id, overrides, key, words):
    with pytest.raises(ValueError, match=_message(fig_id, key)) as error:
        SPECS[fig_id].resolve("tiny", overrides)
    assert re.search(words, str(error.value)), str(error.value)


@pytest.mark.parametrize("setting, allowed", [
    ("n_train=-5", r"an int in \[2, 10000\]\. Got -5"),
    ("widths=", r"a list of 1 to 8 ints in \[1, 256\]\. Got \(empty\)"),
    ("widths=1000000000", r"a list of 1 to 8 ints in \[1, 256\]\. Got 1000000000"),
])
def test_the_command_line_refuses_them_in_one_line_with_exit_2(setting, allowed, tmp_path):
    done = subprocess.run([sys.executable, "-m", "udl", "figure", "3.5", "--preset", "tiny", "--no-cache",
                           "--set", setting, "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(allowed, lines[0]), lines
    assert not list(tmp_path.iterdir())  # refused before computing


def _checks(result):
    return {c["claim"]: c for c in record(result)["checks"]}


@pytest.mark.parametrize("fig_id, overrides, claim", [
    # the case: 0.0128 at 12, 0.038 at 6, 0.084 at 3
    ("3.5", {"widths": "12,6,3"}, "the RMSE to the true function falls as the width grows"),
    ("8.bias-variance", {"capacities": "8,7,6,5,4,3,2,1"}, "bias² + variance is smallest at an intermediate capacity"),
    ("9.2", {"lambdas": "1,0.1,0.01,0.001,1e-5,1e-10"}, "the best λ beats the smallest λ on test error"),
    # panel a with the larger φ0, so b lowers it: the curve moves right
    ("6.2", {"phis": "5,10,0,10,5,20", "x_max": "18", "n": "801"},
     "a larger φ0 (0 → 5) moves the function left: centre at 5 - centre at 0"),
    ("6.hparams", {"lrs": "10,0.1,1", "batches": "32", "num_samples": "1000"},
     "too large a learning rate is worse than the best: best error at the largest lr - best"),
])
def test_checks_hold_for_a_sweep_in_any_order(fig_id, overrides, claim):
    result = run_figure(fig_id, "tiny", overrides=overrides, cache=False)
    checks = _checks(result)
    assert checks[claim]["ok"] is True, checks[claim]
    failed = [c for c in checks.values() if c["ok"] is False]
    assert not failed, failed


@pytest.mark.parametrize("fig_id, overrides, claim, why", [
    ("3.5", {"widths": "6", "steps": "20"}, "the RMSE to the true function falls as the width grows",
     "needs at least two different widths"),
    ("8.bias-variance", {"capacities": "2,6"}, "bias² + variance is smallest at an intermediate capacity",
     "needs at least 3 capacities"),
    # Adam stops short of the minimum: the old ratio compared the two runs' lengths, and passed
    ("6.9", {"adam_steps": "20"},
     "small step needs over twice Adam's steps to come within 0.05 of the minimum (ratio of steps)",
     "Adam did not arrive in 20 steps"),
])
def test_a_claim_the_parameters_cannot_test_is_recorded_as_not_tested(fig_id, overrides, claim, why):
    check = _checks(run_figure(fig_id, "tiny", overrides=overrides, cache=False))[claim]
    assert check["ok"] is None and check["tested"] is False and check["measured"] == "not tested"
    assert why in check["expected"]


def test_the_double_descent_peak_is_not_tested_by_three_widths():
    """At ``tiny`` (widths 8, 28, 64; h* = 25.6) one width lies below P = N and the peak can only be 28 or 64:
    "the peak is near P = N" is not tested; the full preset's sweep tests it."""
    spec = SPECS["8.double-descent"]
    tiny = dict(widths=[8, 28, 64], parameters=[490, 2250, 7434], n_train=2000, interpolation_width=25.633,
                train_error=[0.549, 0.0065, 0.0], test_error=[0.651, 0.685, 0.609],
                peak_width=28, peak_test_error=0.685, peak_width_over_interpolation_width=1.092,
                min_test_error_left_of_peak=0.651, min_test_error_right_of_peak=0.609,
                largest_width_test_error=0.609, largest_width_train_error=0.0, smallest_width_train_error=0.549)
    checks = {c.claim: c for c in spec.check(Result(metrics=tiny))}
    peak = next(c for claim, c in checks.items() if claim.startswith("the test-error peak lies within a factor of 2"))
    assert peak.status == "not tested" and "needs two widths on each side of P = N" in peak.expected
    assert [c.status for c in checks.values()].count("passed") == 5

    full = spec.params["full"]["widths"]  # h* = 42.3 for the full preset's 4,000 training examples
    metrics = dict(tiny, widths=full, parameters=[w * w + 52 * w + 10 for w in full], n_train=4000,
                   interpolation_width=42.3)
    peak = next(c for c in spec.check(Result(metrics=metrics)) if c.claim == peak.claim)
    assert peak.tested and peak.ok  # the same ratio (1.09) is tested by the full sweep
