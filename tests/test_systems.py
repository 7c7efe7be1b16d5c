"""The registry of implemented systems that figure 1.1 draws."""

import torch

from udl.systems import PARADIGMS, SYSTEMS, System, survey, weight_layers


def test_weight_layers_counts_linear_and_conv():
    net = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4, 1))
    assert weight_layers(net) == 2


def test_every_entry_builds_and_matches_its_declared_depth():
    rows = survey()
    assert [r["name"] for r in rows] == [s.name for s in SYSTEMS]
    for row in rows:
        assert row["builds"] and not row["error"], row
        assert row["params"] > 0
        if row["declared_depth"] >= 0:
            assert row["hidden_layers"] == row["declared_depth"], row
    assert {s.paradigm for s in SYSTEMS} == set(PARADIGMS)


def test_shallow_network_has_one_hidden_layer_and_10_parameters():
    (row,) = survey((SYSTEMS[0],))
    assert row["hidden_layers"] == 1 and row["params"] == 10


def test_a_broken_entry_is_reported_not_raised():
    (row,) = survey((System("missing", "supervised", "udl.nn.deep:NoSuchNetwork"),))
    assert not row["builds"] and "AttributeError" in row["error"]


def test_a_model_without_weight_layers_counts_its_tensors_and_no_hidden_layer():
    (row,) = survey(tuple(s for s in SYSTEMS if s.name == "mixture of Gaussians"))
    assert row["builds"] and row["params"] == 6 and row["weight_layers"] == 0 and row["hidden_layers"] == 0


def test_a_depth_that_counts_something_else_is_not_compared():
    (row,) = survey(tuple(s for s in SYSTEMS if s.target == "udl.models.denoisers:MLPDenoiser"))
    assert row["declared_depth"] == -1 and row["hidden_layers"] == 6  # 7 weight layers: time MLP 2, main path 2, Ψ_k 2, output 1
