"""The graph networks of fig. 13.6: the body and its three heads against PyG and the book's formulas.

The common model tests (seeding, gradients, meta build, state_dict, bad arguments) run
over tests/models/test_zoo.py; here: what is specific to graphs. Each head equals the same
network assembled from PyTorch Geometric's GCNConv, global_mean_pool and Linear with the
same weights; a batch (block-diagonal A) gives each graph the output it gets alone;
permuting the nodes permutes node outputs and leaves graph outputs and edge scores alone;
the structure-blind baseline is a per-node MLP.
"""

from __future__ import annotations

import networkx as nx
import pytest
import torch
from torch import nn

from udl.data.graphs import Graph, batch_graphs, from_networkx, karate_club
from udl.models.gnn import (EdgePredictor, GNNConfig, GraphClassifier, GraphNetwork, NodeClassifier, StructureBlind,
                            without_edges)

pyg = pytest.importorskip("torch_geometric")
from torch_geometric.nn import GCNConv, global_mean_pool  # noqa: E402
from torch_geometric.utils import dense_to_sparse  # noqa: E402


def _graph(g: nx.Graph, d: int = 3, seed: int = 0, y=None) -> Graph:
    X = torch.randn(d, g.number_of_nodes(), generator=torch.Generator().manual_seed(seed))
    return from_networkx(g, node_data=X) if y is None else Graph(from_networkx(g, node_data=X).A, X, y=y)


def _with_isolated_node() -> nx.Graph:
    g = nx.path_graph(3)
    g.add_node(3)
    return g


GRAPHS = [nx.path_graph(5), nx.cycle_graph(6), nx.star_graph(4), nx.petersen_graph(), nx.barbell_graph(3, 1),
          _with_isolated_node()]


def _pyg_body(model, graph: Graph) -> torch.Tensor:
    """The body recomputed with GCNConv (rows: PyG's x is our X.T), weights copied: (N, D_K)."""
    edge_index, _ = dense_to_sparse(graph.A)
    x = graph.X.T
    for layer in model.body.layers:
        conv = GCNConv(layer.d_in, layer.d_out)
        with torch.no_grad():
            conv.lin.weight.copy_(layer.omega)
            conv.bias.copy_(layer.beta)
        x = torch.relu(conv(x, edge_index))
    return x


@pytest.mark.parametrize("seed", [0, 1])
def test_the_node_classifier_equals_gcnconv_layers_and_a_linear_map(seed):
    g = _graph(nx.karate_club_graph(), d=5, seed=seed)
    model = NodeClassifier(GNNConfig(d_in=5, d_hidden=6, n_layers=3, n_classes=3), generator=seed)
    with torch.no_grad():
        for p in model.parameters():  # non-zero biases too
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(seed)))
    want = model.head(_pyg_body(model, g))  # (N, K)
    assert torch.allclose(model(g), want, atol=1e-5)


def test_the_graph_classifier_equals_gcnconv_mean_pool_and_linear_on_a_batch():
    graphs = [_graph(g, seed=i) for i, g in enumerate(GRAPHS)]
    batch = batch_graphs(graphs)
    model = GraphClassifier(GNNConfig(d_in=3, d_hidden=4, n_classes=2), generator=0)
    want = model.head(global_mean_pool(_pyg_body(model, batch), batch.node_graph))  # (G, K)
    got = model(batch)
    assert got.shape == (len(graphs), 2)
    assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("make", [GraphClassifier, NodeClassifier, EdgePredictor])
@pytest.mark.parametrize("config", [GNNConfig.tiny(), GNNConfig.tiny(aggregation="max", readout="max"),
                                    GNNConfig.tiny(layer="attention", heads=2, readout="sum"),
                                    GNNConfig.tiny(aggregation="mean", combine="residual")],
                         ids=["sum", "max", "attention", "mean-residual"])
def test_a_batch_gives_each_graph_its_own_output(make, config):
    graphs = [_graph(g, seed=i) for i, g in enumerate(GRAPHS)]
    model = make(config, generator=3)
    batch = batch_graphs(graphs)
    if make is EdgePredictor:
        offsets = torch.tensor([0] + [g.n_nodes for g in graphs]).cumsum(0)
        pairs = [torch.tensor([[0, g.n_nodes - 1], [1, 2]]) for g in graphs]
        alone = torch.cat([model(g, p) for g, p in zip(graphs, pairs)])
        together = model(batch, torch.cat([p + o for p, o in zip(pairs, offsets)]))
    else:
        alone = torch.cat([model(g) for g in graphs])
        together = model(batch)
    assert torch.allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("config", [GNNConfig.tiny(), GNNConfig.tiny(layer="attention", heads=4),
                                    GNNConfig.tiny(aggregation="symmetric", combine="separate", readout="max")],
                         ids=["sum", "attention", "symmetric-separate"])
def test_relabelling_the_nodes_permutes_node_outputs_and_leaves_graph_outputs_and_edge_scores(config):
    g = _graph(nx.les_miserables_graph(), seed=1)
    n = g.n_nodes
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))  # new node i is old node perm[i]
    h = Graph(g.A[perm][:, perm], g.X[:, perm])
    inverse = torch.argsort(perm)  # old node j is new node inverse[j]
    pairs = torch.tensor([[0, 5], [3, 40], [76, 2]])
    nodes = NodeClassifier(config, generator=0)
    graph = GraphClassifier(config, generator=0)
    edges = EdgePredictor(config, generator=0)
    assert torch.allclose(nodes(h), nodes(g)[perm], atol=1e-5)
    assert torch.allclose(graph(h), graph(g), atol=1e-5)
    assert torch.allclose(edges(h, inverse[pairs]), edges(g, pairs), atol=1e-5)


def test_edge_scores_are_dot_products_of_the_node_embeddings_and_symmetric():
    g = karate_club()
    model = EdgePredictor(GNNConfig.karate(d_embed=5), generator=0)
    E = model.node_embeddings(g)  # (5, 34)
    assert E.shape == (5, 34)
    pairs = torch.tensor([[0, 33], [5, 6], [2, 2]])
    assert torch.allclose(model(g, pairs), (E[:, pairs[:, 0]] * E[:, pairs[:, 1]]).sum(0), atol=1e-6)
    assert torch.allclose(model(g, pairs), model(g, pairs.flip(1)))
    with pytest.raises(ValueError, match="'pairs' parameter of EdgePredictor"):
        model(g, torch.tensor([0, 1]))


def test_the_structure_blind_node_classifier_is_an_mlp_of_each_nodes_own_data():
    g = karate_club()
    model = NodeClassifier(GNNConfig.karate(n_layers=2), generator=0)
    blind = StructureBlind(model)
    first, second = model.body.layers
    H = torch.relu(first.omega @ g.X + first.beta[:, None])  # no neighbours: D̃ = 1, Â = I
    H = torch.relu(second.omega @ H + second.beta[:, None])
    assert torch.allclose(blind(g), model.head(H.T), atol=1e-6)
    assert not torch.allclose(blind(g), model(g), atol=1e-3)  # the edges do matter to the model itself
    assert without_edges(g).n_edges == 0 and torch.equal(without_edges(g).X, g.X)
    assert list(blind.parameters()) == list(model.parameters())  # the same weights, shown no edges


def test_the_receptive_field_of_the_body_is_its_number_of_layers():
    """Node 0's output on a path depends on nodes 0..K only (K-hop neighbourhood)."""
    g = _graph(nx.path_graph(8))
    for k in (1, 2, 3):
        body = GraphNetwork(GNNConfig.tiny(n_layers=k), generator=0)
        X = g.X.clone().requires_grad_()
        body(X, g.A)[:, 0].pow(2).sum().backward()
        reached = (X.grad.abs().sum(0) > 0).nonzero().flatten().tolist()
        assert reached == list(range(k + 1))


def test_a_linear_graph_network_is_linear_in_its_input():
    g = karate_club()
    body = GraphNetwork(GNNConfig.karate(activation="identity"), generator=0)
    with torch.no_grad():
        for layer in body.layers:
            layer.beta.zero_()
        X1, X2 = torch.randn(34, 34, generator=torch.Generator().manual_seed(1)), g.X
        assert torch.allclose(body(2 * X1 - X2, g.A), 2 * body(X1, g.A) - body(X2, g.A), atol=1e-5)
        relu = GraphNetwork(GNNConfig.karate(), generator=0)
        assert (relu(X1, g.A) >= 0).all() and (body(X1, g.A) < 0).any()


def test_config_sizes_and_refusals():
    assert GNNConfig.tiny().layer_sizes() == [(3, 8), (8, 8)]
    residual = GNNConfig.tiny(combine="residual", n_layers=3)
    assert residual.layer_sizes() == [(3, 11), (11, 19), (19, 27)]
    assert GraphNetwork(residual, generator=0).output_size == 27
    assert GraphNetwork(residual, generator=0)(torch.zeros(3, 4), torch.zeros(4, 4)).shape == (27, 4)
    assert GNNConfig.karate() == GNNConfig()
    for bad, message in [(dict(n_classes=1), "'n_classes' parameter of GNNConfig"),
                         (dict(heads=3), "'heads' parameter of GNNConfig must divide d_hidden = 16"),
                         (dict(aggregation="kipf", combine="diagonal"), "'combine' parameter of GNNConfig"),
                         (dict(readout="median"), "'readout' parameter of GNNConfig"),
                         (dict(layer="gin"), "'layer' parameter of GNNConfig"),
                         (dict(d_embed=0), "'d_embed' parameter of GNNConfig"),
                         (dict(activation="tanh"), "'activation' parameter of GNNConfig")]:
        with pytest.raises(ValueError, match=message):
            GNNConfig(**bad)
    with pytest.raises(TypeError, match="'graph' parameter of NodeClassifier must be a Graph"):
        NodeClassifier("tiny", generator=0)(torch.zeros(3, 4))
    with pytest.raises(TypeError, match="'model' parameter of StructureBlind"):
        StructureBlind(nn.Linear(2, 2))


@pytest.mark.parametrize("config", [dict(aggregation=a) for a in ("sum", "mean", "symmetric", "max", "kipf")]
                         + [dict(layer="attention", heads=2), dict(aggregation="sum", combine="residual"),
                            dict(aggregation="mean", combine="separate")], ids=str)
def test_without_edges_every_layer_kind_maps_each_node_on_its_own(config):
    """The blind model's output for node n equals the model's output on a one-node graph holding node n alone."""
    g = karate_club()
    model = NodeClassifier(GNNConfig.karate(**config), generator=0)
    with torch.no_grad():
        alone = torch.cat([model(Graph(torch.zeros(1, 1), g.X[:, [n]])) for n in range(g.n_nodes)])
        assert torch.allclose(StructureBlind(model)(g), alone, atol=1e-6)
