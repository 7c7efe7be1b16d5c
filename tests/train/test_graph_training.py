"""Training graph networks (fig. 13.6, 13.8): losses against torch and closed forms, negatives, recipes, baselines."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from udl.data.graphs import (Graph, batch_graphs, graph_classification_set, karate_club, node_classification_graphs,
                             real_graph, split_edges)
from udl.models.gnn import EdgePredictor, GNNConfig, GraphClassifier, NodeClassifier, StructureBlind
from udl.train.graphs import (UNLABELLED, _EdgeObjective, _GraphObjective, common_neighbours, edge_logits, edge_loss,
                              graph_accuracy, masked_cross_entropy, node_accuracy, node_targets, roc_auc,
                              train_edge_predictor, train_graph_classifier, train_node_classifier, train_transductive)


# --------------------------------------------------------------------------- losses
def test_masked_cross_entropy_is_the_cross_entropy_of_the_labelled_nodes_only():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(10, 3, generator=g), torch.randint(0, 3, (10,), generator=g)
    shown = torch.tensor([1, 4, 7])
    targets = node_targets(labels, shown)
    assert targets.tolist() == [UNLABELLED if i not in (1, 4, 7) else int(labels[i]) for i in range(10)]
    assert torch.allclose(masked_cross_entropy(logits, targets), F.cross_entropy(logits[shown], labels[shown]))
    # by hand: -mean log softmax at the label
    by_hand = -torch.log_softmax(logits, 1)[shown, labels[shown]].mean()
    assert torch.allclose(masked_cross_entropy(logits, targets), by_hand)
    mask = torch.zeros(10, dtype=torch.bool)
    mask[shown] = True
    assert torch.equal(node_targets(labels, mask), targets)
    for bad in (torch.tensor([10]), torch.zeros(10, dtype=torch.bool), torch.zeros(9, dtype=torch.bool)):
        with pytest.raises(ValueError, match="'labelled' parameter of node_targets"):
            node_targets(labels, bad)


def test_edge_loss_is_the_binary_cross_entropy_of_the_sigmoid():
    s, y = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, 0.0, 0.0])
    p = torch.sigmoid(s)
    want = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    assert torch.allclose(edge_loss(s, y), want)


def test_the_graph_objective_is_the_mean_cross_entropy_of_the_batch_the_rows_name():
    graphs = graph_classification_set(6, seed=0)
    model = GraphClassifier(GNNConfig.tiny(d_in=4, n_classes=2), generator=0)
    objective = _GraphObjective(model, graphs, [g.y for g in graphs], F.cross_entropy)
    rows = torch.tensor([4, 1, 3])
    batch = batch_graphs([graphs[i] for i in (4, 1, 3)])
    want = F.cross_entropy(torch.cat([model(graphs[i]) for i in (4, 1, 3)]), batch.y)
    assert torch.allclose(objective(rows), want, atol=1e-6)


# --------------------------------------------------------------------------- negative sampling
def test_negatives_are_non_edges_new_each_step_and_the_same_for_the_same_seed_and_step():
    train, _, _ = split_edges(karate_club(), 0.2, generator=0)
    objective = _EdgeObjective(EdgePredictor("karate", generator=0), train, 2, seed=5)
    pairs, targets, seen = objective.sample(0)
    assert seen is train  # no edges dropped
    m = train.n_edges
    assert pairs.shape == (3 * m, 2) and targets.tolist() == [1.0] * m + [0.0] * (2 * m)
    assert torch.equal(pairs[:m], train.edges)
    negative = pairs[m:]
    assert (train.A[negative[:, 0], negative[:, 1]] == 0).all() and (negative[:, 0] < negative[:, 1]).all()
    assert len({tuple(p) for p in negative.tolist()}) == 2 * m  # without replacement
    again, _, _ = _EdgeObjective(EdgePredictor("karate", generator=1), train, 2, seed=5).sample(0)
    assert torch.equal(again, pairs)
    later, _, _ = objective.sample(1)
    other_seed, _, _ = _EdgeObjective(EdgePredictor("karate", generator=0), train, 2, seed=6).sample(0)
    assert not torch.equal(later[m:], negative) and not torch.equal(other_seed[m:], negative)


def test_drop_edges_hides_a_new_share_of_the_edges_from_the_messages_each_step_but_scores_them_all():
    train, _, _ = split_edges(karate_club(), 0.2, generator=0)
    objective = _EdgeObjective(EdgePredictor("karate", generator=0), train, 1, seed=0, drop_edges=0.4)
    m = train.n_edges
    hidden = []
    for step in (0, 1):
        pairs, targets, seen = objective.sample(step)
        assert torch.equal(pairs[:m], train.edges) and int(targets.sum()) == m  # every edge still a positive
        assert seen.n_edges == m - round(0.4 * m) and bool((seen.A <= train.A).all())  # a subgraph
        assert torch.equal(seen.X, train.X) and torch.equal(seen.A, seen.A.T)
        hidden.append(train.A - seen.A)
    assert not torch.equal(*hidden)  # another share each step


def test_negatives_cover_the_non_edges_uniformly():
    """Over many steps every non-edge of a small graph is drawn about equally often (chi-square test)."""
    graph = Graph(torch.tensor(nx.to_numpy_array(nx.cycle_graph(6)), dtype=torch.float32), torch.eye(6))
    objective = _EdgeObjective(EdgePredictor(GNNConfig.tiny(d_in=6), generator=0), graph, 1, seed=0)
    counts: dict[tuple, int] = {}
    for step in range(400):
        for p in objective.sample(step)[0][6:].tolist():
            counts[tuple(p)] = counts.get(tuple(p), 0) + 1
    non_edges = {(m, n) for m, n in itertools.combinations(range(6), 2) if abs(m - n) not in (1, 5)}
    assert set(counts) == non_edges  # 9 non-edges, 6 drawn per step
    expected = 400 * 6 / 9
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 26.1  # the 0.999 quantile of chi-square with 8 degrees of freedom


# --------------------------------------------------------------------------- baselines and measurements
def test_common_neighbours_equal_networkx():
    g = nx.les_miserables_graph()
    graph = real_graph("les_miserables")
    names = list(g.nodes)
    pairs = torch.tensor([[0, 1], [11, 48], [3, 70], [25, 26]])
    want = [len(list(nx.common_neighbors(g, names[m], names[n]))) for m, n in pairs.tolist()]
    assert common_neighbours(graph.A, pairs).tolist() == want
    assert torch.equal(common_neighbours(graph.A, pairs), (graph.A @ graph.A)[pairs[:, 0], pairs[:, 1]])


def test_roc_auc_is_the_probability_that_a_positive_outscores_a_negative_ties_half():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randint(0, 5, (30,), generator=g).double(), torch.randint(0, 4, (40,), generator=g).double()
    by_hand = ((pos[:, None] > neg[None]).double() + 0.5 * (pos[:, None] == neg[None]).double()).mean()
    assert roc_auc(pos, neg) == pytest.approx(float(by_hand), abs=1e-12)
    assert roc_auc(torch.ones(3), torch.ones(4)) == 0.5
    with pytest.raises(ValueError, match="'negative' parameter of roc_auc"):
        roc_auc(pos, torch.zeros(0))


def test_accuracies_count_the_nodes_and_graphs_whose_largest_logit_is_the_label():
    class Fixed(torch.nn.Module):  # predicts class 1 for nodes whose first feature is positive
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, graph):
            x = graph.X[0]
            return torch.stack([-x, x], 1) + self.w

    graphs = node_classification_graphs(3, seed=0)
    want = float(torch.cat([((g.X[0] > 0).long() == g.y).float() for g in graphs]).mean())
    assert node_accuracy(Fixed(), graphs) == pytest.approx(want)
    g = graphs[0]
    assert node_accuracy(Fixed(), g, nodes=torch.tensor([0, 1])) == float(((g.X[0, :2] > 0).long() == g.y[:2]).float().mean())
    with pytest.raises(ValueError, match="'nodes' parameter of node_accuracy"):
        node_accuracy(Fixed(), graphs, nodes=torch.tensor([0]))


# --------------------------------------------------------------------------- recipes
def test_transductive_training_never_reads_the_hidden_labels_and_classifies_the_karate_club():
    """Fig. 13.8b with one labelled member per faction (Mr. Hi, node 0; the officer, node 33)."""
    g = karate_club()
    shown = torch.tensor([0, 33])
    scrambled = Graph(g.A, g.X, y=torch.where(torch.isin(torch.arange(34), shown), g.y, 1 - g.y))
    weights = []
    for graph in (g, scrambled):
        model = NodeClassifier(GNNConfig.karate(), generator=0)
        losses = train_transductive(model, graph, shown, steps=150, device="cpu")
        weights.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))  # the same run: the other labels played no part
    assert losses[-1] < 0.1 * losses[0]
    held_out = torch.arange(1, 33)
    assert node_accuracy(model, g, nodes=held_out) >= 0.9


def test_graph_classification_beats_chance_and_the_structure_blind_baseline():
    train, test = graph_classification_set(200, seed=1), graph_classification_set(100, seed=2)
    config = GNNConfig(d_in=4, d_hidden=16, aggregation="sum", readout="max")
    model, blind = GraphClassifier(config, generator=0), StructureBlind(GraphClassifier(config, generator=0))
    for m in (model, blind):
        train_graph_classifier(m, train, steps=150, batch_size=32, device="cpu")
    accuracy, blind_accuracy = graph_accuracy(model, test), graph_accuracy(blind, test)
    assert accuracy > 0.8 and blind_accuracy < 0.65  # chance: 0.5 (labels are fair coin flips)


def test_inductive_node_classification_on_new_graphs_beats_an_mlp_of_the_nodes_own_data():
    train, test = node_classification_graphs(24, seed=1), node_classification_graphs(10, seed=2)
    config = GNNConfig(d_in=4, d_hidden=16)
    model, blind = NodeClassifier(config, generator=0), StructureBlind(NodeClassifier(config, generator=0))
    for m in (model, blind):
        train_node_classifier(m, train, steps=150, batch_size=8, device="cpu")
    assert node_accuracy(model, test) > node_accuracy(blind, test) + 0.1


def test_edge_prediction_ranks_held_out_edges_above_non_edges():
    g = real_graph("les_miserables")
    train, positive, _ = split_edges(g, 0.15, generator=0)
    negative = torch.triu(1 - g.A - torch.eye(g.n_nodes), 1).nonzero()  # every non-edge of the whole graph
    pairs = torch.cat([positive, negative])
    model = EdgePredictor(GNNConfig(d_in=77, d_hidden=32, d_embed=16), generator=0)
    before = edge_logits(model, train, pairs)
    losses = train_edge_predictor(model, train, steps=300, device="cpu")
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    after = edge_logits(model, train, pairs)
    k = len(positive)
    assert roc_auc(before[:k], before[k:]) < 0.7 < 0.8 < roc_auc(after[:k], after[k:])


def test_recipes_refuse_bad_arguments():
    g = karate_club()
    model = NodeClassifier("karate", generator=0)
    with pytest.raises(ValueError, match="'graph' parameter of train_transductive"):
        train_transductive(model, Graph(g.A, g.X), torch.tensor([0]), steps=2)
    with pytest.raises(ValueError, match="'graphs' parameter of train_graph_classifier"):
        train_graph_classifier(GraphClassifier(GNNConfig.tiny(d_in=4)), node_classification_graphs(2, seed=0), steps=2,
                               batch_size=1)
    with pytest.raises(ValueError, match="'batch_size' parameter of train_node_classifier"):
        train_node_classifier(model, node_classification_graphs(2, seed=0), steps=2, batch_size=3)
    with pytest.raises(ValueError, match="'negatives' parameter of train_edge_predictor"):
        train_edge_predictor(EdgePredictor("karate"), g, steps=2, negatives=10)
    with pytest.raises(ValueError, match="'lr' parameter of train_edge_predictor"):
        train_edge_predictor(EdgePredictor("karate"), g, steps=2, lr=0.0)
