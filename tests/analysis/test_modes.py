"""udl.analysis.modes: mode coverage against a hand count, the 1-NN two-sample accuracy against its closed form.

For two sets from one distribution the leave-one-out 1-NN accuracy averages
(n(n−1) + m(m−1)) / ((n+m)(n+m−1)) (a point's nearest other point is equally likely to be
any of the others); for sets that never mix it is 1; for a hand-made configuration it is
counted by hand.
"""

from __future__ import annotations

import re

import pytest
import torch

from udl.analysis.modes import mode_coverage, nearest_neighbour_accuracy, same_distribution_accuracy

TEMPLATE = r"The '{}' parameter of {} must be .+\. Got .+ instead\."


def test_mode_coverage_by_hand():
    centres = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    samples = torch.tensor([[0.1, 0.0], [0.0, -0.2], [0.3, 0.3], [4.2, 0.1], [2.0, 2.0], [0.0, 4.6]])
    r = mode_coverage(samples, centres, radius=0.5, min_share=0.1)
    assert r["counts"] == [3, 1, 0]  # (0, 4.6) is 0.6 from its centre: off-mode, like (2, 2)
    assert r["covered"] == 2
    assert r["shares"] == pytest.approx([0.5, 1 / 6, 0.0])
    assert r["off_mode_share"] == pytest.approx(2 / 6)
    assert mode_coverage(samples, centres, radius=0.5, min_share=0.2)["covered"] == 1  # 1/6 < 0.2
    assert mode_coverage(samples, centres, radius=1.0, min_share=0.1)["covered"] == 3


def test_collapse_to_one_mode_covers_one():
    centres = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    collapsed = 0.05 * torch.randn(500, 2, generator=torch.Generator().manual_seed(0)) + centres[0]
    r = mode_coverage(collapsed, centres, radius=0.3)
    assert r["covered"] == 1 and r["off_mode_share"] == 0.0


def test_nearest_neighbour_accuracy_by_hand():
    a = torch.tensor([[0.0], [1.0], [10.0]])
    b = torch.tensor([[1.2], [10.5], [20.0]])
    # nearest others: 0→1 (a ✓), 1→1.2 (b ✗), 10→10.5 (b ✗), 1.2→1 (a ✗), 10.5→10 (a ✗), 20→10.5 (b ✓)
    assert nearest_neighbour_accuracy(a, b) == pytest.approx(2 / 6)


def test_nearest_neighbour_accuracy_of_one_distribution_is_its_closed_form():
    g = torch.Generator().manual_seed(0)
    values = [nearest_neighbour_accuracy(torch.randn(100, 2, generator=g), torch.randn(60, 2, generator=g))
              for _ in range(40)]
    mean = sum(values) / len(values)
    expected = same_distribution_accuracy(100, 60)
    assert expected == pytest.approx((100 * 99 + 60 * 59) / (160 * 159))
    sd = torch.tensor(values).std().item() / len(values) ** 0.5
    assert abs(mean - expected) < 4 * sd + 1e-3


def test_sets_that_never_mix_are_told_apart():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(50, 3, generator=g), torch.randn(40, 3, generator=g) + 20
    assert nearest_neighbour_accuracy(a, b) == 1.0


@pytest.mark.parametrize("call, name, owner", [
    (lambda: mode_coverage(torch.zeros(3), torch.zeros(1, 2), 1.0), "samples", "mode_coverage"),
    (lambda: mode_coverage(torch.zeros(3, 2), torch.zeros(1, 3), 1.0), "centres", "mode_coverage"),
    (lambda: mode_coverage(torch.zeros(3, 2), torch.zeros(1, 2), 0.0), "radius", "mode_coverage"),
    (lambda: mode_coverage(torch.zeros(3, 2), torch.zeros(1, 2), 1.0, min_share=1.5), "min_share", "mode_coverage"),
    (lambda: nearest_neighbour_accuracy(torch.zeros(1, 2), torch.zeros(1, 2)), "b", "nearest_neighbour_accuracy"),
    (lambda: nearest_neighbour_accuracy(torch.full((2, 2), float("nan")), torch.zeros(2, 2)), "a",
     "nearest_neighbour_accuracy"),
    (lambda: same_distribution_accuracy(0, 3), "n", "same_distribution_accuracy"),
])
def test_bad_arguments_are_refused(call, name, owner):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert re.fullmatch(TEMPLATE.format(name, owner), str(info.value)), str(info.value)
