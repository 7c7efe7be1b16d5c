"""udl.data.graphs: the book's A, X, E against networkx and PyTorch Geometric; batches; real graphs; families."""

import networkx as nx
import numpy as np
import pytest
import torch

from udl.data.graphs import (Graph, batch_graphs, count_walks, edge_graph, from_edge_index, from_networkx,
                             graph_classification_set, karate_club, negative_edges, node_classification_graphs,
                             real_graph, split_edges, to_edge_index, to_networkx, walks)

pyg_utils = pytest.importorskip("torch_geometric.utils")


def _random_graph(n=12, p=0.3, seed=0, d=3, d_e=2):
    g = nx.gnp_random_graph(n, p, seed=seed)
    rng = np.random.default_rng(seed)
    for v in g.nodes:
        g.nodes[v]["feat"] = rng.standard_normal(d).tolist()
        g.nodes[v]["kind"] = ["a", "b", "c"][v % 3]
    for u, v in g.edges:
        g.edges[u, v]["w"] = rng.standard_normal(d_e).tolist()
    return g


def test_from_networkx_equals_networkx_adjacency_and_attributes():
    g = _random_graph()
    graph = from_networkx(g, node_data="feat", edge_data="w", label="kind")
    assert torch.equal(graph.A, torch.from_numpy(nx.to_numpy_array(g, nodelist=list(g.nodes))).float())
    assert graph.A.dtype == torch.float32 and graph.n_edges == g.number_of_edges()
    assert torch.equal(graph.X, torch.tensor([g.nodes[v]["feat"] for v in g.nodes]).T)  # (D, N): a column per node
    edges = graph.edges.tolist()
    assert edges == sorted(edges) and all(m < n for m, n in edges)
    assert {tuple(e) for e in edges} == {tuple(sorted(e)) for e in g.edges}
    for j, (m, n) in enumerate(edges):  # column j of E is edge j
        assert graph.E[:, j].tolist() == pytest.approx(g.edges[m, n]["w"])
    assert graph.y.tolist() == [v % 3 for v in g.nodes]  # 'a', 'b', 'c' numbered in sorted order


def test_networkx_round_trip():
    graph = from_networkx(_random_graph(seed=3), node_data="feat", edge_data="w", label="kind")
    back = from_networkx(to_networkx(graph), node_data="x", edge_data="e", label="y")
    for name in ("A", "X", "E", "y"):
        assert torch.equal(getattr(back, name), getattr(graph, name)), name
    labelled = Graph(graph.A, graph.X, y=torch.tensor(1))
    assert to_networkx(labelled).graph["y"] == 1
    # no edges: E has no columns
    empty = from_networkx(nx.empty_graph(3), edge_data="w")
    assert empty.E.shape == (0, 0) and empty.n_edges == 0 and empty.edges.shape == (0, 2)
    assert edge_graph(empty).n_nodes == 0
    # string node names: node n is the n-th of g.nodes
    g = nx.Graph([("b", "a"), ("a", "c")])
    assert from_networkx(g).edges.tolist() == [[0, 1], [1, 2]]  # nodes b=0, a=1, c=2


def test_edge_index_matches_pyg():
    graph = from_networkx(_random_graph(n=15, seed=1))
    edge_index = to_edge_index(graph.A)
    assert edge_index.dtype == torch.long and edge_index.shape == (2, 2 * graph.n_edges)
    assert torch.equal(pyg_utils.to_dense_adj(edge_index, max_num_nodes=15)[0], graph.A)
    assert pyg_utils.is_undirected(edge_index)
    assert torch.equal(edge_index, pyg_utils.coalesce(edge_index))  # already PyG's sorted order
    assert torch.equal(edge_index, pyg_utils.dense_to_sparse(graph.A)[0])
    assert torch.equal(to_edge_index(graph), edge_index)
    back = from_edge_index(edge_index, graph.X)
    assert torch.equal(back.A, graph.A) and torch.equal(back.X, graph.X)
    # one direction of each edge is enough; an isolated last node needs n_nodes
    one_way = from_edge_index(graph.edges.T, n_nodes=16)
    assert one_way.n_nodes == 16 and torch.equal(one_way.A[:15, :15], graph.A) and one_way.A[15].sum() == 0
    undirected = pyg_utils.to_undirected(graph.edges.T)
    assert torch.equal(to_edge_index(from_edge_index(undirected).A), undirected)


def test_batch_is_block_diagonal_and_matches_pyg_batching():
    graphs = [from_networkx(_random_graph(n=n, seed=n), node_data="feat", edge_data="w", label=n % 2)
              for n in (5, 8, 3)]
    b = batch_graphs(graphs)
    assert b.n_nodes == 16 and b.n_graphs == 3 and b.n_edges == sum(g.n_edges for g in graphs)
    assert b.node_graph.tolist() == [0] * 5 + [1] * 8 + [2] * 3
    assert b.A[:5, 5:].abs().sum() == 0 and b.A[5:13, :5].abs().sum() == 0 and b.A[13:, :13].abs().sum() == 0
    assert torch.equal(b.A[5:13, 5:13], graphs[1].A)
    assert torch.equal(b.X, torch.cat([g.X for g in graphs], 1))
    assert torch.equal(b.E, torch.cat([g.E for g in graphs], 1))  # edge order survives batching
    assert b.y.tolist() == [1, 0, 1]
    # PyG's batching: edge indices shifted by the nodes before each graph
    shifted = torch.cat([to_edge_index(g.A) + offset for g, offset in zip(graphs, (0, 5, 13))], 1)
    assert torch.equal(pyg_utils.to_dense_adj(shifted, max_num_nodes=16)[0], b.A)
    assert torch.equal(pyg_utils.to_dense_adj(to_edge_index(b.A), b.node_graph).sum(0)[:8, :8],
                       sum(torch.nn.functional.pad(g.A, (0, 8 - g.n_nodes, 0, 8 - g.n_nodes)) for g in graphs))
    # node labels concatenate; a batch of batches is flat
    node_labelled = [Graph(g.A, g.X, y=torch.arange(g.n_nodes)) for g in graphs]
    assert batch_graphs(node_labelled).y.shape == (16,)
    nested = batch_graphs([b, graphs[0]])
    assert nested.n_graphs == 4 and nested.node_graph[-5:].tolist() == [3] * 5 and nested.y.tolist() == [1, 0, 1, 1]


def test_to_moves_every_tensor():
    b = batch_graphs([karate_club(), karate_club()])
    moved = b.to("meta")
    assert all(t.device.type == "meta" for t in (moved.A, moved.X, moved.E, moved.y, moved.node_graph))
    assert moved.n_nodes == 68
    assert repr(b) == "Graph(n_nodes=68, n_edges=156, D=34, D_E=1, y=(68,), n_graphs=2, device=cpu)"  # sizes only


def test_real_graph_sizes():
    g = karate_club()
    assert (g.n_nodes, g.n_edges) == (34, 78) and torch.equal(g.X, torch.eye(34))
    assert g.y.bincount().tolist() == [17, 17] and g.y[0] == 0 and g.y[33] == 1  # Mr. Hi = node 0, Officer = node 33
    assert g.E.shape == (1, 78) and g.E.sum() == sum(w for *_, w in nx.karate_club_graph().edges(data="weight"))
    sizes = {name: (real_graph(name).n_nodes, real_graph(name).n_edges)
             for name in ("karate_club", "les_miserables", "florentine_families", "davis_southern_women")}
    assert sizes == {"karate_club": (34, 78), "les_miserables": (77, 254), "florentine_families": (15, 20),
                     "davis_southern_women": (32, 89)}
    davis = real_graph("davis_southern_women")
    assert davis.y.bincount().tolist() == [18, 14]
    assert (davis.A[davis.y == 0][:, davis.y == 0]).sum() == 0  # bipartite: women meet only events


@pytest.mark.parametrize("build, message", [
    (lambda: Graph(torch.tensor([[0., 2], [2, 0]]), torch.eye(2)), "'A' parameter of Graph must be binary"),
    (lambda: Graph(torch.tensor([[0., 1], [0, 0]]), torch.eye(2)), "'A' parameter of Graph must be symmetric"),
    (lambda: Graph(torch.eye(2), torch.eye(2)), "'A' parameter of Graph must be free of self-loops"),
    (lambda: Graph(torch.zeros(2, 2), torch.eye(3)), "'X' parameter of Graph must be a tensor of shape"),
    (lambda: Graph(torch.zeros(2, 2), torch.eye(2), E=torch.zeros(1, 1)), "'E' parameter of Graph"),
    (lambda: Graph(torch.zeros(2, 2), torch.eye(2), y=torch.zeros(3)), "'y' parameter of Graph"),
    (lambda: from_networkx(nx.DiGraph([(0, 1)])), "'g' parameter of from_networkx must be an undirected"),
    (lambda: from_networkx(nx.Graph([(0, 0)])), "'g' parameter of from_networkx must be a graph without self-loops"),
    (lambda: from_networkx(nx.path_graph(3), label="club"), "'label' parameter of from_networkx"),
    (lambda: from_edge_index(torch.tensor([[0], [5]]), n_nodes=3), "'edge_index' parameter of from_edge_index"),
    (lambda: batch_graphs([]), "'graphs' parameter of batch_graphs"),
    (lambda: batch_graphs([karate_club(), real_graph("florentine_families")]), "'graphs' parameter of batch_graphs"),
    (lambda: real_graph("cora"), "'name' parameter of real_graph must be one of"),
])
def test_bad_graphs_get_one_line(build, message):
    with pytest.raises((ValueError, TypeError), match=message) as info:
        build()
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------------------------------
# Edges for edge prediction
# --------------------------------------------------------------------------------------------------------------------

def _pairs(t):
    return {tuple(p) for p in t.tolist()}


def test_split_edges_holds_out_edges_and_non_edges():
    graph = real_graph("les_miserables")
    train, positive, negative = split_edges(graph, 0.2, generator=0)
    edges = _pairs(graph.edges)
    assert positive.shape == negative.shape == (51, 2)  # round(0.2 * 254)
    assert _pairs(positive) <= edges and not _pairs(negative) & edges and len(_pairs(negative)) == 51
    assert _pairs(train.edges) == edges - _pairs(positive) and train.n_edges == 254 - 51
    assert torch.equal(train.A, train.A.T) and torch.equal(train.X, graph.X)
    assert all(m < n for m, n in negative.tolist() + positive.tolist())
    # E's columns follow their edges
    weight = {tuple(e): w for e, w in zip(graph.edges.tolist(), graph.E[0].tolist())}
    assert train.E[0].tolist() == [weight[tuple(e)] for e in train.edges.tolist()]
    again = split_edges(graph, 0.2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[1], positive) and torch.equal(again[2], negative)
    assert not torch.equal(split_edges(graph, 0.2, generator=1)[1], positive)


def test_negative_edges_exclude_and_stay_within_graphs():
    graph = karate_club()
    n_free = 34 * 33 // 2 - 78
    everything = negative_edges(graph.A, n_free, generator=0)
    assert len(_pairs(everything)) == n_free and not _pairs(everything) & _pairs(graph.edges)
    held = everything[:10]
    rest = negative_edges(graph.A, n_free - 10, generator=0, exclude=held.flip(1))  # either order excludes
    assert _pairs(rest) == _pairs(everything) - _pairs(held)
    with pytest.raises(ValueError, match=r"^The 'n' parameter of negative_edges must be at most 483"):
        negative_edges(graph.A, n_free + 1, generator=0)
    b = batch_graphs([graph, graph])
    within = negative_edges(b.A, 2 * n_free, generator=0, node_graph=b.node_graph)
    assert bool((b.node_graph[within[:, 0]] == b.node_graph[within[:, 1]]).all())
    assert negative_edges(graph.A, 0, generator=0).shape == (0, 2)


# --------------------------------------------------------------------------------------------------------------------
# Walks and the edge graph
# --------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_walks_counted_by_enumeration_equal_powers_of_A(seed):
    A = from_networkx(nx.gnp_random_graph(9, 0.35, seed=seed)).A
    for k in range(5):
        assert torch.equal(count_walks(A, k), torch.linalg.matrix_power(A, k).long()), k
    for walk in walks(A, 3, 4):  # every listed walk is one: consecutive nodes are joined
        assert walk[0] == 4 and len(walk) == 4 and all(A[a, b] == 1 for a, b in zip(walk, walk[1:]))
    assert len(set(walks(A, 3, 4))) == len(walks(A, 3, 4)) == int(torch.linalg.matrix_power(A, 3)[4].sum())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_edge_graph_equals_networkx_line_graph(seed):
    g = nx.gnp_random_graph(10, 0.3, seed=seed)
    graph = from_networkx(g, node_data=torch.randn(3, 10, generator=torch.Generator().manual_seed(seed)),
                          edge_data=None)
    graph = Graph(graph.A, graph.X, E=torch.arange(2.0 * graph.n_edges).reshape(2, -1))
    line = edge_graph(graph)
    reference = nx.line_graph(g)
    order = [tuple(e) for e in graph.edges.tolist()]  # node j of the edge graph is edge j
    expected = nx.to_numpy_array(reference, nodelist=[e if e in reference else e[::-1] for e in order])
    assert torch.equal(line.A, torch.from_numpy(expected).float())
    assert nx.is_isomorphic(to_networkx(line), reference)
    assert torch.equal(line.X, graph.E)  # edges become nodes: their data move with them
    for j, (a, b) in enumerate(line.edges.tolist()):  # edge data = the data of the node the two edges share
        shared = set(order[a]) & set(order[b])
        assert len(shared) == 1 and torch.equal(line.E[:, j], graph.X[:, shared.pop()])


# --------------------------------------------------------------------------------------------------------------------
# Seeded labelled families
# --------------------------------------------------------------------------------------------------------------------

def test_graph_classification_label_is_structure_only():
    from sklearn.linear_model import LogisticRegression

    graphs = graph_classification_set(800, seed=0)
    y = np.array([int(g.y) for g in graphs])
    assert abs(y.mean() - 0.5) < 0.05
    assert {g.n_nodes for g in graphs} == {24} and {g.n_edges for g in graphs} == {44}  # M = m (N - m) in both
    # structure-blind: pooled node data (mean, max, std) + N + N_E -> chance
    blind = np.array([np.r_[g.X.mean(1), g.X.amax(1), g.X.std(1), g.n_nodes, g.n_edges] for g in graphs])
    accuracy = LogisticRegression(max_iter=2000).fit(blind[:500], y[:500]).score(blind[500:], y[500:])
    assert abs(accuracy - 0.5) < 0.08, accuracy  # measured 0.49
    # a structural statistic separates: the largest degree (hubs in class 1), one threshold chosen on the training part
    top = np.array([float(g.A.sum(0).max()) for g in graphs])
    threshold = max(np.unique(top[:500]), key=lambda t: ((top[:500] > t) == y[:500]).mean())
    assert ((top[500:] > threshold) == y[500:]).mean() > 0.85  # measured 0.93 (threshold 8)


def test_node_classification_neighbourhood_decides():
    from sklearn.linear_model import LogisticRegression

    graphs = node_classification_graphs(200, seed=0)
    y = torch.cat([g.y for g in graphs]).numpy()
    half = len(y) // 2
    own = torch.cat([g.X for g in graphs], 1).T.numpy()  # (N_total, D): each node's own data
    alone = LogisticRegression().fit(own[:half], y[:half]).score(own[half:], y[half:])
    assert 0.6 < alone < 0.72, alone  # Φ(0.4) = 0.655; measured 0.66
    two_hop = []  # the mean over the 2-hop neighbourhood (A + I normalised, twice): a GCN's view without weights
    for g in graphs:
        P = (g.A + torch.eye(g.n_nodes)) / (g.A.sum(0) + 1)  # (N, N): columns sum to 1
        two_hop.append((g.X @ P @ P).T)
    two_hop = torch.cat(two_hop).numpy()
    neighbours = LogisticRegression().fit(two_hop[:half], y[:half]).score(two_hop[half:], y[half:])
    assert neighbours > alone + 0.15, (alone, neighbours)  # measured 0.89


def test_families_are_seeded_per_item():
    for make in (graph_classification_set, node_classification_graphs):
        few, many, other = make(3, seed=5), make(10, seed=5), make(3, seed=6)
        assert all(torch.equal(a.A, b.A) and torch.equal(a.X, b.X) and torch.equal(a.y, b.y)
                   for a, b in zip(few, many))
        assert not all(torch.equal(a.A, b.A) for a, b in zip(few, other))
        for g in few:  # valid graphs
            Graph(g.A, g.X, y=g.y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_graphs_on_cuda_give_the_cpu_results_on_cuda():
    graph = real_graph("les_miserables")
    cuda = graph.to("cuda", non_blocking=True)
    assert cuda.A.is_cuda and cuda.E.is_cuda and cuda.n_edges == 254
    batch = batch_graphs([cuda, cuda])
    assert batch.A.is_cuda and batch.node_graph.is_cuda and batch.n_graphs == 2
    for a, b in zip(split_edges(cuda, 0.2, generator=0), split_edges(graph, 0.2, generator=0)):
        tensor_a, tensor_b = (a.A, b.A) if isinstance(a, Graph) else (a, b)
        assert tensor_a.is_cuda and torch.equal(tensor_a.cpu(), tensor_b)
    assert torch.equal(negative_edges(cuda.A, 9, generator=1).cpu(), negative_edges(graph.A, 9, generator=1))
    line = edge_graph(cuda)
    assert line.A.is_cuda and torch.equal(line.A.cpu(), edge_graph(graph).A)
    back = from_edge_index(to_edge_index(cuda.A), cuda.X)
    assert back.A.is_cuda and torch.equal(back.A.cpu(), graph.A)
