"""udl.analysis.graph_receptive_field: breadth-first search against networkx, gradient support against the K-hop
neighbourhood, sensitivity against its closed form for a linear layer."""

import networkx as nx
import pytest
import torch

from udl.analysis.graph_receptive_field import graph_input_sensitivity, hop_distances, k_hop_neighbourhood
from udl.nn.graph import GraphAttention, GraphConv, GraphSequential

F64 = torch.float64


def _adjacency(g, dtype=F64):
    return torch.tensor(nx.to_numpy_array(g, nodelist=range(g.number_of_nodes()), weight=None), dtype=dtype)


def _with_isolated():
    g = nx.gnp_random_graph(12, 0.2, seed=4)
    g.add_nodes_from([12, 13])
    g.add_edge(12, 13)  # a second component
    return g


GRAPHS = {"karate": nx.karate_club_graph(), "tree": nx.balanced_tree(2, 3), "grid": nx.grid_2d_graph(4, 5),
          "two components": _with_isolated()}
GRAPHS["grid"] = nx.convert_node_labels_to_integers(GRAPHS["grid"])


@pytest.mark.parametrize("name", list(GRAPHS))
def test_hop_distances_equal_networkx_shortest_paths(name):
    g = GRAPHS[name]
    A = _adjacency(g)
    for n in range(0, g.number_of_nodes(), 3):
        want = nx.single_source_shortest_path_length(g, n)
        assert hop_distances(A, n).tolist() == [want.get(m, -1) for m in range(g.number_of_nodes())]
        for k in (0, 1, 2, 3):
            ego = set(nx.ego_graph(g, n, radius=k).nodes)
            assert set(k_hop_neighbourhood(A, n, k).nonzero().flatten().tolist()) == ego


def test_hop_distances_follow_the_edges_direction_towards_the_node():
    g = nx.gn_graph(15, seed=2)  # a directed tree: every edge points towards node 0
    A = _adjacency(g)
    for n in range(15):
        want = nx.single_target_shortest_path_length(g, n)
        want = dict(want) if not isinstance(want, dict) else want
        assert hop_distances(A, n).tolist() == [want.get(m, -1) for m in range(15)]
    assert (hop_distances(A, 0) >= 0).all()  # everything flows to the root
    assert (hop_distances(A.T, 0) >= 0).sum() == 1  # and nothing from it


def _network(kind, k, seed=0):
    layers = []
    d = 3
    for i in range(k):
        if kind == "gat":
            layer = GraphAttention(d, 4, heads=2, generator=seed + i)
        else:
            layer = GraphConv(d, 8, aggregation=kind, generator=seed + i)
        layers.append(layer)
        d = layer.output_size
    return GraphSequential(layers).double()


@pytest.mark.parametrize("kind", ["sum", "kipf", "mean", "symmetric", "gat"])
@pytest.mark.parametrize("name", list(GRAPHS))
def test_a_k_layer_networks_gradient_support_is_the_k_hop_neighbourhood(kind, name):
    g = GRAPHS[name]
    A = _adjacency(g)
    N = g.number_of_nodes()
    for k in (1, 2, 3):
        support = graph_input_sensitivity(_network(kind, k), A, 3, generator=k) > 0  # (N, N)
        bfs = torch.stack([k_hop_neighbourhood(A, n, k) for n in range(N)])
        assert torch.equal(support, bfs), f"K = {k}: {(support != bfs).sum()} pairs differ"


def test_max_aggregation_stays_inside_the_k_hop_neighbourhood_and_fills_it_with_enough_probes():
    g = GRAPHS["tree"]
    A = _adjacency(g)
    for k in (1, 2):
        support = graph_input_sensitivity(_network("max", k), A, 3, n_probes=24, generator=0) > 0
        bfs = torch.stack([k_hop_neighbourhood(A, n, k) for n in range(15)])
        assert torch.equal(support, bfs)
        one = graph_input_sensitivity(_network("max", k), A, 3, n_probes=1, generator=0) > 0
        assert not (one & ~bfs).any()  # a single probe may miss a neighbour, never reach beyond


def test_sensitivity_of_a_linear_layer_is_its_closed_form():
    """y_n = rᵀ Ω H (A + I) e_n, so ∂y_n/∂h_m = (A + I)[m, n] Ωᵀ r and the sensitivity is
    Σ_d |(Ωᵀ r)_d| · (A + I)[m, n]."""
    A = _adjacency(GRAPHS["karate"])
    layer = GraphConv(3, 5, activation="identity", generator=0).double()
    got = graph_input_sensitivity(layer, A, 3, nodes=[0, 33], n_probes=1, generator=7)
    g = torch.Generator().manual_seed(7)
    torch.randn(3, 34, generator=g, dtype=F64)  # the probe H (a linear layer's gradient does not depend on it)
    r = torch.randn(5, 2, generator=g, dtype=F64)
    M = A + torch.eye(34, dtype=F64)
    want = torch.stack([(layer.omega.T @ r[:, i]).abs().sum() * M[:, n] for i, n in enumerate([0, 33])])
    torch.testing.assert_close(got, want.detach(), rtol=1e-12, atol=1e-12)


def test_the_model_keeps_its_mode_and_gets_no_gradients():
    model = _network("sum", 2)
    A = _adjacency(GRAPHS["tree"])
    graph_input_sensitivity(model, A, 3, nodes=[0])
    assert model.training and all(p.grad is None for p in model.parameters())
    model.eval()
    graph_input_sensitivity(model, A, 3, nodes=[0])
    assert not model.training


def test_bad_arguments_are_refused_in_one_line():
    A = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="'node' parameter of hop_distances must be an int in"):
        hop_distances(A, 3)
    with pytest.raises(ValueError, match="'A' parameter of hop_distances must be a tensor of shape"):
        hop_distances(torch.zeros(3, 4), 0)
    with pytest.raises(ValueError, match="'nodes' parameter of graph_input_sensitivity"):
        graph_input_sensitivity(GraphConv(2, 2), A, 2, nodes=[5])
    with pytest.raises(TypeError, match="'model' parameter of graph_input_sensitivity must be callable"):
        graph_input_sensitivity(3, A, 2)
