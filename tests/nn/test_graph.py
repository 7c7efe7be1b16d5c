"""udl.nn.graph against the book's formulas written node by node, and against PyTorch Geometric's layers."""

import networkx as nx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from udl.nn.graph import GraphAttention, GraphConv, edge_score, propagation_matrix, readout

pyg = pytest.importorskip("torch_geometric")
from torch_geometric.nn import GATConv, GCNConv, GINConv  # noqa: E402
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool  # noqa: E402
from torch_geometric.nn import GraphConv as PygGraphConv  # noqa: E402

F32, F64 = torch.float32, torch.float64
TOL32 = dict(rtol=1e-5, atol=1e-5)
TOL64 = dict(rtol=1e-12, atol=1e-12)


def _randn(*shape, seed, dtype=F64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _adjacency(g: nx.Graph, dtype=F64) -> torch.Tensor:
    return torch.tensor(nx.to_numpy_array(g, nodelist=range(g.number_of_nodes()), weight=None), dtype=dtype)


def _graphs():
    """Small graphs with what breaks layers: an isolated node, a star (one high degree), a tree, a clique."""
    g = nx.gnp_random_graph(9, 0.35, seed=3)
    g.add_node(9)  # isolated
    return {"random+isolated": g, "star": nx.star_graph(6), "tree": nx.balanced_tree(2, 3),
            "karate": nx.karate_club_graph(), "clique": nx.complete_graph(5)}


GRAPHS = _graphs()


def _edge_index(A):
    return A.nonzero().T.contiguous()  # (2, M): row m -> column n, PyG's source -> target


def _loss(t, seed):
    return (t * _randn(*t.shape, seed=seed, dtype=t.dtype)).sum()


# --------------------------------------------------------------------------- the formulas, node by node
def _by_hand(layer: GraphConv, H: torch.Tensor, g: nx.Graph) -> torch.Tensor:
    """Each column from §13.4 / §13.8's per-node sums, looping over the graph's neighbour lists."""
    omega, beta = layer.omega.detach(), layer.beta.detach()
    cols = []
    for n in range(H.shape[1]):
        ne = list(g.neighbors(n))
        h = H[:, n]
        if layer.aggregation == "kipf":  # Σ over ne[n] ∪ {n} of h_m / √((|ne[n]| + 1)(|ne[m]| + 1))
            agg = sum(H[:, m] / ((len(ne) + 1) * (g.degree(m) + 1)) ** 0.5 for m in ne + [n])
        elif not ne:
            agg = torch.zeros_like(h)
        elif layer.aggregation == "sum":
            agg = sum(H[:, m] for m in ne)
        elif layer.aggregation == "mean":
            agg = sum(H[:, m] for m in ne) / len(ne)
        elif layer.aggregation == "symmetric":
            agg = sum(H[:, m] / (len(ne) * g.degree(m)) ** 0.5 for m in ne)
        else:  # max
            agg = torch.stack([H[:, m] for m in ne], 1).max(1).values
        if layer.combine == "add":
            pre = omega @ (agg if layer.aggregation == "kipf" else agg + h)
        elif layer.combine == "diagonal":
            pre = omega @ (agg + (1 + layer.epsilon.detach()) * h)
        elif layer.combine == "separate":
            pre = omega @ agg + layer.psi.detach() @ h
        else:
            pre = omega @ agg
        out = torch.relu(pre + beta)
        cols.append(torch.cat([out, h]) if layer.combine == "residual" else out)
    return torch.stack(cols, 1)


VARIANTS = [(a, c) for a in ("sum", "mean", "symmetric", "max") for c in ("add", "diagonal", "separate", "residual")]
VARIANTS.append(("kipf", "add"))


@pytest.mark.parametrize("aggregation, combine", VARIANTS, ids=lambda v: v)
@pytest.mark.parametrize("name", ["random+isolated", "star", "karate"])
def test_every_variant_is_its_formula_node_by_node(aggregation, combine, name):
    g = GRAPHS[name]
    layer = GraphConv(4, 3, aggregation=aggregation, combine=combine, generator=1).double()
    with torch.no_grad():
        layer.beta.copy_(_randn(3, seed=5))  # β and ε start at zero: make them count
        if layer.epsilon is not None:
            layer.epsilon.fill_(0.7)
    H = _randn(4, g.number_of_nodes(), seed=2)
    torch.testing.assert_close(layer(H, _adjacency(g)), _by_hand(layer, H, g), **TOL64)
    assert layer(H, _adjacency(g)).shape == (layer.output_size, g.number_of_nodes())


def test_simple_layer_is_equation_g1_in_matrix_form():
    A = _adjacency(GRAPHS["karate"])
    layer = GraphConv(5, 2, generator=0).double()
    H = _randn(5, 34, seed=1)
    want = torch.relu(layer.beta[:, None] + layer.omega @ H @ (A + torch.eye(34, dtype=F64)))
    torch.testing.assert_close(layer(H, A), want, **TOL64)


def test_propagation_matrix_gives_the_linear_layers():
    A = _adjacency(GRAPHS["random+isolated"])
    H = _randn(4, 10, seed=3)
    for aggregation in ("sum", "mean", "symmetric", "kipf"):
        layer = GraphConv(4, 3, aggregation=aggregation, activation="identity", bias=False, generator=2).double()
        torch.testing.assert_close(layer(H, A), layer.omega @ H @ propagation_matrix(A, aggregation), **TOL64)
    M = propagation_matrix(A, "kipf")
    torch.testing.assert_close(M, M.T, **TOL64)  # symmetric for an undirected graph
    assert M[9, 9] == 1.0 and M[9, :9].abs().sum() == 0  # the isolated node keeps itself, weight 1 / (0 + 1)
    deg = A.sum(0)
    torch.testing.assert_close(propagation_matrix(A, "mean").sum(0), torch.where(deg > 0, 2.0, 1.0).double())


# --------------------------------------------------------------------------- against PyTorch Geometric
def _gcn_pair(d_in, d_out, seed):
    ours = GraphConv(d_in, d_out, aggregation="kipf", activation="identity", generator=seed)
    with torch.no_grad():
        ours.beta.copy_(_randn(d_out, seed=seed + 100, dtype=F32))
    ref = GCNConv(d_in, d_out)
    with torch.no_grad():
        ref.lin.weight.copy_(ours.omega)
        ref.bias.copy_(ours.beta)
    return ours, ref


@pytest.mark.parametrize("name", list(GRAPHS))
def test_kipf_layer_equals_gcnconv_in_values_and_gradients(name):
    A = _adjacency(GRAPHS[name], F32)
    N = A.shape[0]
    ours, ref = _gcn_pair(6, 5, seed=4)
    H = _randn(6, N, seed=7, dtype=F32).requires_grad_()
    X = H.detach().T.clone().requires_grad_()  # PyG: one row per node
    got, want = ours(H, A), ref(X, _edge_index(A)).T
    torch.testing.assert_close(got, want, **TOL32)
    _loss(got, 11).backward()
    _loss(want, 11).backward()
    torch.testing.assert_close(H.grad, X.grad.T, **TOL32)
    torch.testing.assert_close(ours.omega.grad, ref.lin.weight.grad, **TOL32)
    torch.testing.assert_close(ours.beta.grad, ref.bias.grad, **TOL32)


def test_on_a_directed_graph_the_layers_follow_the_edges_as_pyg_does():
    """A[m, n] = 1 is an edge m -> n; degrees are in-degrees (column sums), as PyG's target-side normalisation."""
    A = _adjacency(nx.gnp_random_graph(12, 0.25, seed=1, directed=True), F32)
    assert not torch.equal(A, A.T)
    ours, ref = _gcn_pair(6, 5, seed=2)
    _compare_with_pyg(ours, ref, A, [("omega", ref.lin.weight), ("beta", ref.bias)], seed=3)
    ours, ref = _gat_pair(6, 4, 3, True, seed=2)
    _compare_with_pyg(ours, ref, A, [("omega", ref.lin.weight), ("beta", ref.bias)], seed=4)


def test_the_books_kipf_form_is_not_gcnconv():
    """Ω H (D^-½ A D^-½ + I) weighs the node itself by 1, GCNConv by 1 / (degree + 1)."""
    A = _adjacency(GRAPHS["karate"], F32)
    ours, ref = _gcn_pair(6, 5, seed=4)
    book = GraphConv(6, 5, aggregation="symmetric", activation="identity", generator=4)
    book.load_state_dict(ours.state_dict())
    H = _randn(6, 34, seed=7, dtype=F32)
    gap = (book(H, A) - ref(H.T, _edge_index(A)).T).abs().max()
    assert gap > 0.1


def _compare_with_pyg(ours, ref, A, pairs, seed):
    """Values, input gradients and the named parameters' gradients of udl's layer and PyG's (float32)."""
    H = _randn(ours.d_in, A.shape[0], seed=seed, dtype=F32).requires_grad_()
    X = H.detach().T.clone().requires_grad_()
    got, want = ours(H, A), ref(X, _edge_index(A)).T
    torch.testing.assert_close(got, want, **TOL32)
    _loss(got, seed + 1).backward()
    _loss(want, seed + 1).backward()
    torch.testing.assert_close(H.grad, X.grad.T, **TOL32)
    for name, theirs in pairs:
        torch.testing.assert_close(getattr(ours, name).grad.reshape(theirs.grad.shape), theirs.grad, **TOL32)


@pytest.mark.parametrize("aggregation", ["sum", "mean", "max"])
@pytest.mark.parametrize("name", ["random+isolated", "star", "karate"])
def test_a_separate_map_for_the_node_equals_pygs_graphconv(aggregation, name):
    """combine="separate", a[β1ᵀ + Ω agg + ΨH], is PyG's GraphConv, lin_rel(agg) + lin_root(x): sum, mean, max."""
    A = _adjacency(GRAPHS[name], F32)
    ours = GraphConv(5, 4, aggregation=aggregation, combine="separate", activation="identity", generator=3)
    with torch.no_grad():
        ours.beta.copy_(_randn(4, seed=4, dtype=F32))
    ref = PygGraphConv(5, 4, aggr={"sum": "add"}.get(aggregation, aggregation))
    with torch.no_grad():
        ref.lin_rel.weight.copy_(ours.omega)
        ref.lin_rel.bias.copy_(ours.beta)
        ref.lin_root.weight.copy_(ours.psi)
    _compare_with_pyg(ours, ref, A, [("omega", ref.lin_rel.weight), ("beta", ref.lin_rel.bias),
                                     ("psi", ref.lin_root.weight)], seed=5)


@pytest.mark.parametrize("name", ["random+isolated", "star", "karate"])
def test_diagonal_enhancement_equals_pygs_ginconv_with_a_linear_map(name):
    """combine="diagonal": Ω(HA + (1 + ε)H) + β is GIN's update with a learned ε and a linear 'network'."""
    A = _adjacency(GRAPHS[name], F32)
    ours = GraphConv(5, 4, combine="diagonal", activation="identity", generator=3)
    with torch.no_grad():
        ours.beta.copy_(_randn(4, seed=4, dtype=F32))
        ours.epsilon.fill_(0.3)
    ref = GINConv(torch.nn.Linear(5, 4), train_eps=True)
    with torch.no_grad():
        ref.nn.weight.copy_(ours.omega)
        ref.nn.bias.copy_(ours.beta)
        ref.eps.fill_(0.3)
    _compare_with_pyg(ours, ref, A, [("omega", ref.nn.weight), ("beta", ref.nn.bias), ("epsilon", ref.eps)], seed=6)


def _gat_pair(d_in, d_out, heads, concat, seed):
    ours = GraphAttention(d_in, d_out, heads=heads, concat=concat, activation="identity", generator=seed)
    with torch.no_grad():
        ours.beta.copy_(_randn(*ours.beta.shape, seed=seed + 100, dtype=F32))
    ref = GATConv(d_in, d_out, heads=heads, concat=concat)
    with torch.no_grad():
        ref.lin.weight.copy_(ours.omega)
        ref.att_src.copy_(ours.phi[:, :d_out][None])  # φ's first half scores the neighbour (the source)
        ref.att_dst.copy_(ours.phi[:, d_out:][None])
        ref.bias.copy_(ours.beta)
    return ours, ref


@pytest.mark.parametrize("heads, concat", [(1, True), (3, True), (3, False), (4, False)])
@pytest.mark.parametrize("name", ["random+isolated", "star", "karate"])
def test_graph_attention_equals_gatconv_in_values_and_gradients(heads, concat, name):
    A = _adjacency(GRAPHS[name], F32)
    N = A.shape[0]
    ours, ref = _gat_pair(6, 4, heads, concat, seed=heads)
    H = (2 * _randn(6, N, seed=8, dtype=F32)).requires_grad_()  # scores of both signs through the LeakyReLU
    X = H.detach().T.clone().requires_grad_()
    got, want = ours(H, A), ref(X, _edge_index(A)).T
    assert got.shape == (heads * 4 if concat else 4, N)
    torch.testing.assert_close(got, want, **TOL32)
    _loss(got, 12).backward()
    _loss(want, 12).backward()
    torch.testing.assert_close(H.grad, X.grad.T, **TOL32)
    torch.testing.assert_close(ours.omega.grad, ref.lin.weight.grad, **TOL32)
    torch.testing.assert_close(ours.phi.grad[:, :4], ref.att_src.grad[0], **TOL32)
    torch.testing.assert_close(ours.phi.grad[:, 4:], ref.att_dst.grad[0], **TOL32)
    torch.testing.assert_close(ours.beta.grad, ref.bias.grad, **TOL32)


def test_attention_weights_equal_gatconv_and_vanish_off_the_graph():
    A = _adjacency(GRAPHS["karate"], F32)
    ours, ref = _gat_pair(6, 4, 2, True, seed=1)
    H = _randn(6, 34, seed=9, dtype=F32)
    P = ours.attention(H, A)  # (heads, N, N)
    _, (index, alpha) = ref(H.T, _edge_index(A), return_attention_weights=True)
    dense = torch.zeros(2, 34, 34)
    dense[:, index[0], index[1]] = alpha.T  # P[h, source m, target n]
    torch.testing.assert_close(P, dense, **TOL32)
    off = (A + torch.eye(34)) == 0
    assert P[:, off].abs().max() == 0.0
    torch.testing.assert_close(P.sum(1), torch.ones(2, 34), **TOL32)
    assert (P[:, ~off] > 0).all()


@pytest.mark.parametrize("mode, pool", [("mean", global_mean_pool), ("max", global_max_pool),
                                        ("sum", global_add_pool)])
def test_readout_equals_pyg_pooling(mode, pool):
    node_graph = torch.tensor([0, 0, 0, 1, 2, 2, 2, 2, 1, 0])  # not sorted: nodes of a graph need not be adjacent
    H = _randn(5, 10, seed=3, dtype=F32).requires_grad_()
    X = H.detach().T.clone().requires_grad_()
    got, want = readout(H, node_graph, 3, mode), pool(X, node_graph, 3).T
    torch.testing.assert_close(got, want, **TOL32)
    _loss(got, 4).backward()
    _loss(want, 4).backward()
    torch.testing.assert_close(H.grad, X.grad.T, **TOL32)


def test_readout_of_a_graph_without_nodes_is_zero():
    out = readout(torch.ones(2, 3), torch.tensor([0, 0, 2]), 3, "max")
    assert out[:, 1].tolist() == [0.0, 0.0] and out[:, 0].tolist() == [1.0, 1.0]


def test_edge_score_is_the_dot_product():
    H = _randn(4, 6, seed=1)
    pairs = torch.tensor([[0, 1], [5, 2], [3, 3]])
    want = torch.stack([H[:, m] @ H[:, n] for m, n in pairs.tolist()])
    torch.testing.assert_close(edge_score(H, pairs), want, **TOL64)
    torch.testing.assert_close(edge_score(H, pairs[:, [1, 0]]), want, **TOL64)  # symmetric in m, n


# --------------------------------------------------------------------------- permutation equivariance
LAYERS = [dict(aggregation=a, combine=c) for a, c in VARIANTS] + [dict(kind="gat", heads=2, concat=c)
                                                                   for c in (True, False)]


def _layer(spec, seed):
    spec = dict(spec)
    if spec.pop("kind", None) == "gat":
        return GraphAttention(3, 4, generator=seed, **spec).double()
    return GraphConv(3, 4, generator=seed, **spec).double()


@settings(max_examples=40, deadline=None)
@given(spec=st.sampled_from(LAYERS), n=st.integers(1, 9), p=st.floats(0.0, 1.0), seed=st.integers(0, 2 ** 16),
       directed=st.booleans())
def test_every_layer_is_permutation_equivariant(spec, n, p, seed, directed):
    """f(H P, Pᵀ A P) = f(H, A) P for every permutation matrix P (§13.4.1), undirected graphs and directed ones."""
    g = nx.gnp_random_graph(n, p, seed=seed, directed=directed)
    A = _adjacency(g)
    layer = _layer(spec, seed)
    with torch.no_grad():
        if layer.beta is not None:
            layer.beta.copy_(_randn(*layer.beta.shape, seed=seed))
    H = _randn(3, n, seed=seed + 1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    P = torch.eye(n, dtype=F64)[:, perm]  # H P reorders the columns: column j of H P is h_perm[j]
    torch.testing.assert_close(layer(H @ P, P.T @ A @ P), layer(H, A) @ P, **TOL64)


def test_readout_and_edge_score_are_invariant_to_renumbering():
    H, node_graph = _randn(3, 7, seed=2), torch.tensor([0, 1, 1, 0, 2, 2, 1])
    perm = torch.tensor([3, 0, 6, 5, 1, 2, 4])
    for mode in ("mean", "max", "sum"):
        torch.testing.assert_close(readout(H[:, perm], node_graph[perm], 3, mode), readout(H, node_graph, 3, mode))
    where = torch.argsort(perm)  # node k sits at column where[k] after renumbering
    pairs = torch.tensor([[0, 4], [2, 6]])
    torch.testing.assert_close(edge_score(H[:, perm], where[pairs]), edge_score(H, pairs))


# --------------------------------------------------------------------------- batches, weights, errors
def test_a_block_diagonal_batch_equals_each_graph_alone():
    graphs = [GRAPHS["star"], GRAPHS["tree"], GRAPHS["clique"]]
    As = [_adjacency(g) for g in graphs]
    Hs = [_randn(3, a.shape[0], seed=i) for i, a in enumerate(As)]
    for layer in (GraphConv(3, 4, aggregation="max", generator=0).double(),
                  GraphConv(3, 4, aggregation="kipf", generator=0).double(),
                  GraphAttention(3, 2, heads=2, generator=0).double()):
        out = layer(torch.cat(Hs, 1), torch.block_diag(*As))
        torch.testing.assert_close(out, torch.cat([layer(h, a) for h, a in zip(Hs, As)], 1), **TOL64)


def test_weights_follow_the_generator_and_glorots_bound():
    a, b = GraphConv(40, 60, combine="separate", generator=3), GraphConv(40, 60, combine="separate",
                                                                       generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    bound = (6 / 100) ** 0.5
    assert a.omega.abs().max() <= bound and a.omega.abs().max() > 0.98 * bound
    assert abs(a.omega.var().item() - bound ** 2 / 3) < 0.1 * bound ** 2 / 3
    assert not torch.equal(a.omega, a.psi) and a.beta.abs().max() == 0
    gat = GraphAttention(8, 4, heads=3, generator=1)
    assert gat.omega.abs().max() <= (6 / 20) ** 0.5 and gat.phi.abs().max() <= (6 / 11) ** 0.5
    assert GraphConv(3, 4, combine="diagonal", generator=0).epsilon.item() == 0.0


def test_layers_build_on_the_meta_device():
    with torch.device("meta"):
        layer = GraphAttention(5, 4, heads=2)
        conv = GraphConv(5, 4, combine="separate")
    assert layer.omega.is_meta and sum(p.numel() for p in conv.parameters()) == 2 * 20 + 4


def test_forward_refuses_bad_inputs_in_one_line():
    layer = GraphConv(3, 4, generator=0)
    A = torch.zeros(5, 5)
    with pytest.raises(ValueError, match=r"^The 'H' parameter of GraphConv must be a tensor of shape \(3, N\)"):
        layer(torch.zeros(2, 5), A)
    with pytest.raises(ValueError, match=r"^The 'A' parameter of GraphConv must be a tensor of shape \(5, 5\)"):
        layer(torch.zeros(3, 5), torch.zeros(4, 4))
    with pytest.raises(TypeError, match=r"^The 'A' parameter of GraphAttention must be a torch.float32 tensor"):
        GraphAttention(3, 4, generator=0)(torch.zeros(3, 5), A.double())
    with pytest.raises(ValueError, match="'combine' parameter of GraphConv must be 'add' with aggregation='kipf'"):
        GraphConv(3, 4, aggregation="kipf", combine="residual")
    with pytest.raises(ValueError, match="'node_graph' parameter of readout must hold graph indices in"):
        readout(torch.zeros(2, 3), torch.tensor([0, 1, 3]), 3)
    with pytest.raises(ValueError, match="'pairs' parameter of edge_score must hold node indices in"):
        edge_score(torch.zeros(2, 3), torch.tensor([[0, 3]]))
    with pytest.raises(ValueError, match="'aggregation' parameter of propagation_matrix"):
        propagation_matrix(A, "max")


def test_gradients_reach_epsilon_and_psi():
    A = _adjacency(GRAPHS["tree"])
    for combine, name in (("diagonal", "epsilon"), ("separate", "psi")):
        layer = GraphConv(3, 2, combine=combine, activation="identity", generator=0).double()
        _loss(layer(_randn(3, 15, seed=1), A), 2).backward()
        assert getattr(layer, name).grad.abs().sum() > 0
