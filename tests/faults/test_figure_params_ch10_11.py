"""Issue 12, items 4 and 8, for the figures of chapters 10 and 11: parameters are checked before computing,
and every check holds (or says it was not tested) for any valid parameters.

- 8: each figure declares the range of every number and list parameter; a value outside it, or values that
  do not fit together (a 3 x 3 patch outside the photograph, a batch larger than the training set, a tile
  that the volume or the U-Net's poolings cannot take), is refused by ``resolve`` with udl's one-line
  template, and ``udl figure --set`` exits 2 with that line and no traceback;
- 4: checks that assumed the book's values (10.6's eleven inputs, 10.11's 2 x 2 mean pooling tolerance)
  hold for other valid values; claims that a run cannot test (10.6's "whole input" for inputs wider than
  the field, 11.12's stacks compared with one stack, 10.18's duplicates when nothing is detected, the
  book's error levels of 10.mnist1d away from the book's training, 11.13's strict count of minima on a
  coarse grid) are recorded as not tested; 11.11 no longer checks what the all-agree rule makes true by
  itself.
"""

import math
import os
import re
import subprocess
import sys

import pytest

from udl.registry import get
from udl.runner import run_figure

TEMPLATE = r"^The '{key}' parameter of figure {id} must be .+\. Got .+ instead\.$"


# values the command line used to accept (issue 12, item 8), and values that do not fit together
REFUSED = [
    ("10.9", {"width": 10 ** 9}, "width", r"an int in \[5, 16\]\. Got 1000000000"),
    ("10.2", {"n_random": 0}, "n_random", r"an int in \[4, 10000\]\. Got 0"),  # would pass "on random inputs"
    ("10.6", {"channels": [3, 4, 4]}, "channels", r"a list of 4 ints in \[1, 64\]\. Got 3,4,4"),
    ("10.6", {"channels": []}, "channels", r"Got \(empty\)"),
    ("10.10", {"patch_row": 52}, "patch_row", r"at most 51 \(the photograph is 53 pixels high at downscale 8\)"),
    ("10.10", {"downscale": 64, "patch_row": 2, "patch_col": 9}, "patch_col", r"at most 8 .*Got 9"),
    ("10.11", {"photo_factor": 54}, "photo_factor", r"at most 53 \(the photograph's smaller side"),
    ("10.12", {"downscale": 64, "photo_factor": 7}, "photo_factor", r"at most 6 "),
    ("10.18", {"grid": 3}, "grid", r"image_size \(32\) divided by a power of two\. Got 3"),
    ("10.18", {"grid": 1}, "widths", r"at least 5 widths .*Got 8,16,16"),
    ("10.18", {"max_size": 40}, "max_size", r"in \[6, 32\] .*Got 40"),
    ("10.18", {"n_train": 10}, "batch_size", r"at most n_train \(10\)\. Got 16"),
    ("10.18", {"steps": 0}, "steps", r"an int in \[2, 100000\]\. Got 0"),
    ("10.mnist1d", {"lr": 0.0}, "lr", r"a float in \[1e-06, 10\]\. Got 0\.0"),
    ("11.10", {"levels": 1}, "levels", r"an int in \[2, 5\]\. Got 1"),
    ("11.10", {"max_radius": 3.0}, "max_radius", r"in \[min_radius, size / 2\] = \[4, 16\]\. Got 3"),
    ("11.11", {"tile": 6}, "tile", r"a divisor of size \(16\)\. Got 6"),
    ("11.11", {"levels": 3, "tile": 2}, "tile", r"a multiple of 2\^\(levels - 1\) = 4\. Got 2"),
    ("11.11", {"n_train": 1, "tile": 16, "batch_size": 4}, "batch_size", r"at most the number of training tiles"),
    ("11.12", {"stride": 3}, "stride", r"must be one of 1, 2, 4\. Got 3"),
    ("11.12", {"channels": 18}, "channels", r"a multiple of 4\. Got 18"),
    ("11.12", {"depth": 5}, "image_size", r"a multiple of stride · 2\^depth = 128\. Got 64"),
    ("11.12", {"stack_tolerance": 1.0}, "stack_tolerance", r"a float in \[0, 0\.5\]"),
    ("11.13", {"grid": 12}, "grid", r"must be odd .*Got 12"),
    ("11.13", {"span": math.nan}, "span", r"Got nan"),
    ("11.14", {"channels": 5}, "groups", r"a divisor of channels \(5\)\. Got 2"),
    ("11.14", {"ghost": 4}, "ghost", r"a divisor of batch \(4\) smaller than batch\. Got 4"),
    ("11.14", {"ghost": 3}, "ghost", r"a divisor of batch \(4\)"),
    ("11.14", {"height": 1, "width": 1, "element": [2, 0, 0]}, "width", r"at least 2 when height is 1"),
    ("11.14", {"element": [4, 0, 3]}, "element", r"index below \(4, 4, 6\)\. Got 4,0,3 instead"),
    ("11.14", {"tol": 1.0}, "tol", r"a float in \[0, 1e-06\]"),
]


@pytest.mark.parametrize("fig_id, overrides, key, message", REFUSED,
                         ids=[f"{c[0]}-{','.join(c[1])}" for c in REFUSED])
def test_parameters_that_cannot_be_used_are_refused_before_computing(fig_id, overrides, key, message):
    with pytest.raises(ValueError, match=TEMPLATE.format(key=key, id=re.escape(fig_id))) as caught:
        get(fig_id).resolve("tiny", overrides)
    assert re.search(message, str(caught.value)), str(caught.value)


@pytest.mark.parametrize("argv, message", [
    (["10.9", "--set", "width=1000000000"], r"^The 'width' parameter of figure 10\.9 must be an int in \[5, 16\]"),
    (["11.14", "--set", "channels=5"], r"^The 'groups' parameter of figure 11\.14 must be a divisor of channels"),
    (["10.6", "--set", "channels="], r"^The 'channels' parameter of figure 10\.6 must be a list of 4 ints"),
])
def test_the_command_line_refuses_them_in_one_line(argv, message, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "UDL_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "udl", "figure", *argv[:1], "--preset", "tiny", "--out",
                           str(tmp_path / "out"), *argv[1:]], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0].removeprefix("udl: ").removeprefix("error: ")), lines
    assert not (tmp_path / "out" / f"{argv[0]}.json").exists()


# --------------------------------------------------------------------------- item 4: any valid value
def _statuses(result) -> dict[str, str]:
    return {c.claim: c.status for c in result.checks}


def test_receptive_fields_of_a_short_input_are_the_formula_clipped():
    """10.6 at n = 5: the fields are 3, 5, 5, 5 inputs (the book's 3, 5, 7, 11 clipped to the input)."""
    result = run_figure("10.6", "tiny", device="cpu", overrides={"n": 5, "n_probes": 24}, cache=False)
    assert result.metrics["measured_sizes"] == [3, 5, 5, 5]
    assert set(_statuses(result).values()) == {"passed"}, _statuses(result)


def test_an_input_wider_than_the_field_leaves_the_whole_input_claim_untested():
    """10.6 at n = 13: H4 sees 11 of the 13 inputs; "sees the whole input" is not tested, the rest passes."""
    result = run_figure("10.6", "tiny", device="cpu", overrides={"n": 13, "n_probes": 24}, cache=False)
    assert result.metrics["measured_sizes"] == [3, 5, 7, 11]
    statuses = _statuses(result)
    assert statuses.pop("the fourth layer's unit sees the whole input") == "not tested"
    assert set(statuses.values()) == {"passed"}, statuses
    untested = [c.to_dict() for c in result.checks if not c.tested]
    assert untested[0]["ok"] is None and "needs n <= 11" in untested[0]["expected"]


def test_mean_pooling_of_large_blocks_is_compared_within_float32_rounding():
    """10.11 with 32 x 32 blocks: float32 sums of 1,024 values differ by more than 1e-6 in another order."""
    result = run_figure("10.11", "tiny", device="cpu", overrides={"downscale": 2, "photo_factor": 32}, cache=False)
    assert result.metrics["photo_mean_minus_torch"] > 1e-6  # the book-sized tolerance would fail
    assert result.ok and all(c.tested for c in result.checks)


def test_one_hourglass_cannot_be_compared_with_a_later_stack():
    """11.12 with one stack: the two first-against-last claims are not tested (they compared a stack with itself)."""
    result = run_figure("11.12", "tiny", device="cpu", cache=False,
                        overrides={"n_stacks": 1, "steps": 4, "n_train": 16, "n_test": 8, "pck_target": 0.0})
    untested = [c.claim for c in result.checks if not c.tested]
    assert len(untested) == 2 and all("the last stack" in claim for claim in untested), untested
    assert result.metrics["pck_per_stack"] == [result.metrics["pck_at_0_1"]]


def test_duplicates_are_not_counted_as_absent_when_nothing_is_detected():
    """10.18 keeping no box (confidence threshold 1): "at most one box per object" is not tested, not passed."""
    result = run_figure("10.18", "tiny", device="cpu", cache=False,
                        overrides={"conf_threshold": 1.0, "steps": 2, "n_train": 32, "n_test": 8})
    assert result.metrics["recall_after_nms"] == 0.0
    (untested,) = [c for c in result.checks if not c.tested]
    assert untested.claim.startswith("after NMS at most one box matches each detected object")
    assert untested.to_dict()["ok"] is None


def test_the_book_numbers_are_not_tested_away_from_the_books_training():
    """10.mnist1d with 10 steps: the four claims about the book's error levels are recorded as not tested."""
    result = run_figure("10.mnist1d", "tiny", device="cpu", cache=False, overrides={"steps": 10, "eval_every": 10})
    untested = [c.to_dict() for c in result.checks if not c.tested]
    assert [c["claim"][:24] for c in untested] == ["convolutional test error", "fully connected test err",
                                                   "the convolutional networ", "both fit the training da"]
    assert all(c["ok"] is None and "100,000 steps" in c["expected"] for c in untested)


def test_a_coarse_grid_leaves_the_strict_count_of_minima_untested():
    """11.13 on a 7 x 7 grid: "more local minima without skips" needs 21 points a side; not tested, not passed."""
    result = run_figure("11.13", "tiny", device="cpu", cache=False,
                        overrides={"blocks": 2, "channels": 4, "steps": 5, "grid": 7, "n_eval": 16})
    (untested,) = [c.to_dict() for c in result.checks if not c.tested]
    assert untested["claim"].startswith("the surface without skips has more local minima")
    assert untested["ok"] is None and "grid = 7" in untested["expected"]
