"""Graphs as the book writes them: an adjacency matrix A, node data X and edge data E (UDL §13.2).

A graph with N nodes and N_E edges is three matrices (fig. 13.3):

- ``A`` (N, N): ``A[m, n] = 1`` when nodes m and n are joined; binary and symmetric for
  the undirected graphs of chapter 13, with a zero diagonal (no self-loops).
- ``X`` (D, N): node data, ONE COLUMN PER NODE (the book's convention). PyTorch Geometric
  stores rows: its ``data.x`` is our ``X.T``.
- ``E`` (D_E, N_E): edge data, one column per edge, in the order of :attr:`Graph.edges`
  (pairs ``m < n``, sorted lexicographically, i.e. the upper triangle of A read row by row).

A batch of graphs is one big graph whose adjacency is block diagonal (§13.5.1):
:func:`batch_graphs` builds it and records which graph each node came from in
``node_graph``. PyG's form of the edges is an ``edge_index`` (2, M) listing both
directions (:func:`to_edge_index`, :func:`from_edge_index`).

Example::

    >>> g = karate_club()
    >>> g.n_nodes, g.n_edges, tuple(g.X.shape), g.y.bincount().tolist()
    (34, 78, (34, 34), [17, 17])
    >>> batch_graphs([g, g])
    Graph(n_nodes=68, n_edges=156, D=34, D_E=1, y=(68,), n_graphs=2, device=cpu)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import networkx as nx
import numpy as np
import torch

from udl.validate import (_refuse, _shown, as_generator, check_choice, check_float, check_instance, check_int,
                          check_sequence, check_tensor)

__all__ = ["Graph", "from_networkx", "to_networkx", "to_edge_index", "from_edge_index", "batch_graphs",
           "karate_club", "real_graph", "REAL_GRAPHS", "split_edges", "negative_edges", "edge_graph",
           "count_walks", "walks", "graph_classification_set", "node_classification_graphs"]

REAL_GRAPHS = ("karate_club", "les_miserables", "florentine_families", "davis_southern_women")


# --------------------------------------------------------------------------------------------------------------------
# The representation
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)  # tensors have no single truth value: graphs compare by identity
class Graph:
    """An undirected graph, or a batch of them, in the book's matrices (UDL §13.2, fig. 13.3).

    Args:
        A: (N, N) float adjacency: 0/1, symmetric, zero diagonal.
        X: (D, N) node data, column n = node n (D may be 0: no node data).
        E: (D_E, N_E) edge data, column j = edge j of :attr:`edges`, or None. Default None.
        y: labels, or None: a graph label of shape (), per-node labels (N,), or in a batch
            one label per graph (n_graphs,). Default None.
        node_graph: (N,) long, which graph of a batch each node belongs to (0, 1, ...,
            non-decreasing), set by :func:`batch_graphs`; None for a single graph. Default None.

    The constructor checks all of this (O(N²) for A); :meth:`to` does not check again.

    Example::

        >>> A = torch.tensor([[0., 1, 0], [1, 0, 1], [0, 1, 0]])
        >>> g = Graph(A, torch.eye(3))
        >>> g.edges.tolist(), g.n_edges, g.n_graphs
        ([[0, 1], [1, 2]], 2, 1)
    """

    A: torch.Tensor
    X: torch.Tensor
    E: torch.Tensor | None = None
    y: torch.Tensor | None = None
    node_graph: torch.Tensor | None = None

    def __post_init__(self):
        owner = "Graph"
        A = check_tensor(self.A, "A", owner, ndim=2, dtype="float")
        if A.shape[0] != A.shape[1]:
            _refuse("A", owner, "a square (N, N) tensor", f"shape {tuple(A.shape)}")
        if not bool(((A == 0) | (A == 1)).all()):
            _refuse("A", owner, "binary (entries 0 or 1)", f"entries {sorted(set(A.unique().tolist()))[:4]}")
        if not torch.equal(A, A.T):
            _refuse("A", owner, "symmetric (an undirected graph)", "an asymmetric matrix")
        if bool(A.diagonal().any()):
            _refuse("A", owner, "free of self-loops (a zero diagonal)", f"{int(A.diagonal().sum())} self-loops")
        n = A.shape[0]
        check_tensor(self.X, "X", owner, shape=("D", n), dtype="float")
        if self.E is not None:
            check_tensor(self.E, "E", owner, shape=("D_E", self.n_edges), dtype="float")
        node_graph = self.node_graph
        if node_graph is not None:
            check_tensor(node_graph, "node_graph", owner, shape=(n,), dtype="int")
            if n and (int(node_graph[0]) != 0 or bool((node_graph.diff() < 0).any())
                      or bool((node_graph.diff() > 1).any())):
                _refuse("node_graph", owner, "non-decreasing graph numbers 0, 1, ... without gaps",
                        f"{node_graph.tolist()[:8]}")
        if self.y is not None:
            check_tensor(self.y, "y", owner, dtype="real")
            allowed = [(), (n,)] + ([(self.n_graphs,)] if node_graph is not None else [])
            if tuple(self.y.shape) not in allowed:
                _refuse("y", owner, "a tensor of shape " + " or ".join(map(str, allowed)),
                        f"shape {tuple(self.y.shape)}")

    @property
    def n_nodes(self) -> int:
        """N, the number of nodes (of all graphs, in a batch)."""
        return self.A.shape[0]

    @property
    def n_edges(self) -> int:
        """N_E, the number of (undirected) edges."""
        return int(torch.count_nonzero(torch.triu(self.A, diagonal=1)))

    @property
    def n_graphs(self) -> int:
        """How many graphs this is: 1, or the number of graphs in a batch."""
        if self.node_graph is None:
            return 1
        return int(self.node_graph[-1]) + 1 if self.node_graph.numel() else 0

    @property
    def edges(self) -> torch.Tensor:
        """(N_E, 2) long: each edge once as ``(m, n)`` with m < n, sorted lexicographically (E's column order)."""
        return torch.triu(self.A, diagonal=1).nonzero()  # row-major order of the upper triangle

    def __repr__(self) -> str:  # sizes, not the tensors: A alone has N² entries
        parts = [f"n_nodes={self.n_nodes}", f"n_edges={self.n_edges}", f"D={self.X.shape[0]}"]
        if self.E is not None:
            parts.append(f"D_E={self.E.shape[0]}")
        if self.y is not None:
            parts.append(f"y={tuple(self.y.shape)}")
        if self.node_graph is not None:
            parts.append(f"n_graphs={self.n_graphs}")
        return f"Graph({', '.join(parts)}, device={self.A.device})"

    def to(self, device, non_blocking: bool = False) -> "Graph":
        """The same graph with every tensor on ``device`` (so ``udl.train.fit`` can move a batch ``(graph, y)``)."""
        moved = {f.name: (None if getattr(self, f.name) is None
                          else getattr(self, f.name).to(device, non_blocking=non_blocking))
                 for f in dataclasses.fields(self)}
        return _unchecked(**moved)


def _unchecked(**fields) -> Graph:
    """A Graph built without the constructor's O(N²) checks (from tensors already checked)."""
    graph = object.__new__(Graph)
    for name, value in fields.items():
        object.__setattr__(graph, name, value)
    return graph


def _adjacency(n: int, edges: torch.Tensor) -> torch.Tensor:
    """(N, N) float32 symmetric 0/1 adjacency from an (M, 2) list of pairs, on the pairs' device."""
    A = torch.zeros(n, n, device=edges.device)
    if len(edges):
        A[edges[:, 0], edges[:, 1]] = 1.0
        A[edges[:, 1], edges[:, 0]] = 1.0
    return A


# --------------------------------------------------------------------------------------------------------------------
# Conversions: networkx and PyTorch Geometric's edge_index
# --------------------------------------------------------------------------------------------------------------------

def _codes(values: list, name: str, owner: str) -> torch.Tensor:
    """Labels as long: ints kept as they are, anything else numbered 0, 1, ... in sorted order."""
    if any(v is None for v in values):
        _refuse(name, owner, "an attribute every node has", "a node without it")
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return torch.tensor([int(v) for v in values], dtype=torch.long)
    names = sorted(set(values), key=str)
    return torch.tensor([names.index(v) for v in values], dtype=torch.long)


def _columns(values: list, name: str, owner: str) -> torch.Tensor:
    """A list of per-item values (numbers or vectors) as a (D, len) float32 matrix."""
    if any(v is None for v in values):
        _refuse(name, owner, "an attribute every node (or edge) has", "one without it")
    if not values:  # no nodes (or no edges): D is unknown, take 0
        return torch.zeros(0, 0)
    try:
        rows = torch.stack([torch.as_tensor(v, dtype=torch.float32).reshape(-1) for v in values])
    except (TypeError, ValueError, RuntimeError):
        _refuse(name, owner, "numeric attributes of one length", "other values")
    return rows.T.contiguous()  # (D, len)


def from_networkx(g, *, node_data: str | torch.Tensor | None = None, edge_data: str | None = None,
                  label: str | int | None = None) -> Graph:
    """A networkx graph as the book's matrices; node n is the n-th node of ``g.nodes``.

    Args:
        g: an undirected ``networkx.Graph`` without self-loops (not a DiGraph or MultiGraph).
        node_data: the node attribute holding each node's data (a number or a vector), a
            (D, N) tensor, or None for one-hot node identities, X = I (N, N). Default None.
        edge_data: the edge attribute holding each edge's data (E's columns), or None for
            no E. Default None.
        label: a node attribute (node labels, y (N,); ints are kept, other values are
            numbered 0, 1, ... in sorted order), an int (a graph label, y of shape ()),
            or None. Default None.

    Returns:
        A :class:`Graph`.

    Example::

        >>> from_networkx(nx.path_graph(3)).A.tolist()
        [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    owner = "from_networkx"
    check_instance(g, "g", owner, nx.Graph)
    if g.is_directed() or g.is_multigraph():
        _refuse("g", owner, "an undirected simple graph (networkx.Graph)", type(g).__name__)
    if nx.number_of_selfloops(g):
        _refuse("g", owner, "a graph without self-loops", f"{nx.number_of_selfloops(g)} self-loops")
    nodes = list(g.nodes)
    index = {v: i for i, v in enumerate(nodes)}
    n = len(nodes)
    pairs = sorted(tuple(sorted((index[u], index[v]))) for u, v in g.edges)
    edges = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)
    A = _adjacency(n, edges)
    if node_data is None:
        X = torch.eye(n)
    elif isinstance(node_data, torch.Tensor):
        X = check_tensor(node_data, "node_data", owner, shape=("D", n), dtype="float")
    elif isinstance(node_data, str):
        X = _columns([g.nodes[v].get(node_data) for v in nodes], "node_data", owner)
    else:
        _refuse("node_data", owner, "a node attribute name, a (D, N) tensor or None", _shown(node_data), TypeError)
    E = None
    if edge_data is not None:
        if not isinstance(edge_data, str):
            _refuse("edge_data", owner, "an edge attribute name or None", _shown(edge_data), TypeError)
        E = _columns([g.edges[nodes[m], nodes[k]].get(edge_data) for m, k in pairs], "edge_data", owner)
    y = None
    if isinstance(label, str):
        y = _codes([g.nodes[v].get(label) for v in nodes], "label", owner)
    elif label is not None:
        y = torch.tensor(check_int(label, "label", owner, minimum=None), dtype=torch.long)
    return Graph(A, X, E, y)


def to_networkx(graph: Graph) -> nx.Graph:
    """A :class:`Graph` as a ``networkx.Graph`` with nodes 0 ... N-1.

    Each node carries its column of X as the attribute ``"x"`` (a list), and its label as
    ``"y"`` when ``y`` holds node labels; each edge its column of E as ``"e"``; a graph
    label is ``g.graph["y"]``. So ``from_networkx(to_networkx(g), node_data="x",
    edge_data="e", label="y")`` gives ``g`` back.
    """
    check_instance(graph, "graph", "to_networkx", Graph)
    g = nx.Graph()
    X = graph.X.detach().cpu()
    node_labels = graph.y is not None and graph.y.dim() == 1 and len(graph.y) == graph.n_nodes
    for n in range(graph.n_nodes):
        attributes = {"x": X[:, n].tolist()}
        if node_labels:
            attributes["y"] = int(graph.y[n])
        g.add_node(n, **attributes)
    edges = graph.edges.cpu().tolist()
    E = None if graph.E is None else graph.E.detach().cpu()
    for j, (m, n) in enumerate(edges):
        g.add_edge(m, n, **({} if E is None else {"e": E[:, j].tolist()}))
    if graph.y is not None and graph.y.dim() == 0:
        g.graph["y"] = int(graph.y)
    return g


def to_edge_index(A: torch.Tensor | Graph) -> torch.Tensor:
    """PyTorch Geometric's ``edge_index`` (2, M): every edge in both directions, sorted by source then target.

    Args:
        A: an (N, N) adjacency (any nonzero entry is an edge), or a :class:`Graph`.

    Example::

        >>> to_edge_index(torch.tensor([[0., 1], [1, 0]])).tolist()
        [[0, 1], [1, 0]]
    """
    if isinstance(A, Graph):
        A = A.A
    check_tensor(A, "A", "to_edge_index", ndim=2, dtype="real")
    return A.nonzero().T.contiguous()  # (2, M): PyG's coalesced order


def from_edge_index(edge_index: torch.Tensor, X: torch.Tensor | None = None, n_nodes: int | None = None) -> Graph:
    """A :class:`Graph` from PyTorch Geometric's ``edge_index`` (2, M).

    Each pair is taken as an undirected edge (one direction is enough; repeats merge).

    Args:
        edge_index: (2, M) integer node pairs.
        X: (D, N) node data in the book's columns (PyG's ``data.x.T``), or None for X = I.
            Default None.
        n_nodes: N; by default X's columns, or else one more than the largest node number.

    Example::

        >>> from_edge_index(torch.tensor([[0, 1], [1, 2]]), n_nodes=4).n_edges
        2
    """
    owner = "from_edge_index"
    check_tensor(edge_index, "edge_index", owner, shape=(2, "M"), dtype="int")
    if n_nodes is not None:
        n_nodes = check_int(n_nodes, "n_nodes", owner, minimum=0)
    if X is not None:
        check_tensor(X, "X", owner, ndim=2, dtype="float")
        if n_nodes is not None and X.shape[1] != n_nodes:
            _refuse("X", owner, f"a tensor of shape (D, {n_nodes})", f"shape {tuple(X.shape)}")
        n_nodes = X.shape[1]
    largest = int(edge_index.max()) if edge_index.numel() else -1
    if n_nodes is None:
        n_nodes = largest + 1
    if edge_index.numel() and (int(edge_index.min()) < 0 or largest >= n_nodes):
        _refuse("edge_index", owner, f"node numbers in [0, {n_nodes})",
                f"[{int(edge_index.min())}, {largest}]")
    if bool((edge_index[0] == edge_index[1]).any()):
        _refuse("edge_index", owner, "free of self-loops", f"{int((edge_index[0] == edge_index[1]).sum())}")
    A = _adjacency(n_nodes, edge_index.T.long())
    if X is not None and X.device != A.device:
        _refuse("X", owner, f"on the device of edge_index ({A.device})", f"a tensor on {X.device}")
    return Graph(A, torch.eye(n_nodes, device=A.device) if X is None else X)


def batch_graphs(graphs: Sequence[Graph]) -> Graph:
    """Many graphs as one: block-diagonal A, X and E concatenated along their columns (UDL §13.5.1).

    Graph labels (each ``y`` of shape ()) are stacked to (n_graphs,); node labels are
    concatenated to (N,). ``node_graph`` says which graph each node came from; a batch of
    batches is one flat batch.

    Args:
        graphs: a non-empty list of :class:`Graph` with the same D (and all or none with E,
            all or none with y, of one kind).

    Example::

        >>> path = lambda n: from_networkx(nx.path_graph(n), node_data=torch.ones(1, n))
        >>> b = batch_graphs([path(2), path(3)])
        >>> b.node_graph.tolist(), b.edges.tolist()
        ([0, 0, 1, 1, 1], [[0, 1], [2, 3], [3, 4]])
    """
    owner = "batch_graphs"
    check_sequence(graphs, "graphs", owner, of="Graphs")
    if not graphs or not all(isinstance(g, Graph) for g in graphs):
        _refuse("graphs", owner, "a non-empty list of Graphs", f"{len(graphs)} items" if graphs else "[]",
                TypeError if graphs else ValueError)
    if len({g.X.shape[0] for g in graphs}) > 1:
        _refuse("graphs", owner, "graphs with node data of one size D", f"D = {sorted({g.X.shape[0] for g in graphs})}")
    if len({g.E is None for g in graphs}) > 1 or len({g.y is None for g in graphs}) > 1:
        _refuse("graphs", owner, "graphs that all have E (and y) or none do", "a mixture")
    if graphs[0].E is not None and len({g.E.shape[0] for g in graphs}) > 1:
        _refuse("graphs", owner, "graphs with edge data of one size D_E", f"D_E = {sorted({g.E.shape[0] for g in graphs})}")
    if graphs[0].y is not None:
        kinds = {"graph" if (g.y.dim() == 0 or (g.node_graph is not None and len(g.y) == g.n_graphs
                                                 and len(g.y) != g.n_nodes)) else "node" for g in graphs}
        if len(kinds) > 1:
            _refuse("graphs", owner, "graphs whose labels are all graph labels or all node labels", "a mixture")
    A = torch.block_diag(*[g.A for g in graphs])  # (N, N), one block per graph
    X = torch.cat([g.X for g in graphs], dim=1)  # (D, N)
    E = None if graphs[0].E is None else torch.cat([g.E for g in graphs], dim=1)  # (D_E, N_E): blocks keep the order
    y = None
    if graphs[0].y is not None:
        y = torch.cat([g.y.reshape(-1) for g in graphs])  # (n_graphs,) or (N,)
    parts, offset = [], 0
    for g in graphs:
        local = g.node_graph if g.node_graph is not None else torch.zeros(g.n_nodes, dtype=torch.long,
                                                                           device=g.A.device)
        parts.append(local + offset)
        offset += g.n_graphs
    return _unchecked(A=A, X=X, E=E, y=y, node_graph=torch.cat(parts))


# --------------------------------------------------------------------------------------------------------------------
# Real graphs that ship with networkx
# --------------------------------------------------------------------------------------------------------------------

def karate_club() -> Graph:
    """Zachary's karate club (networkx): 34 members, 78 friendships; y = the faction each member joined.

    ``y`` is 0 for 'Mr. Hi' (17 members) and 1 for 'Officer' (17), from networkx's
    ``club`` attribute; X = I (34, 34), one-hot identities; E = (1, 78) the number of
    contexts in which each pair met (networkx's ``weight``).
    """
    return from_networkx(nx.karate_club_graph(), edge_data="weight", label="club")


def real_graph(name: str) -> Graph:
    """A small real graph bundled with networkx, with X = I (one-hot node identities).

    Args:
        name: ``'karate_club'`` (34 nodes, 78 edges; y = faction, see :func:`karate_club`),
            ``'les_miserables'`` (77 characters, 254 co-appearances; E = (1, 254) how many
            chapters they share), ``'florentine_families'`` (15 families, 20 marriages) or
            ``'davis_southern_women'`` (18 women and 14 events, 89 attendances: bipartite;
            y = 0 for a woman, 1 for an event).

    Example::

        >>> g = real_graph("les_miserables"); g.n_nodes, g.n_edges
        (77, 254)
    """
    check_choice(name, "name", "real_graph", REAL_GRAPHS)
    if name == "karate_club":
        return karate_club()
    if name == "les_miserables":
        return from_networkx(nx.les_miserables_graph(), edge_data="weight")
    if name == "florentine_families":
        return from_networkx(nx.florentine_families_graph())
    return from_networkx(nx.davis_southern_women_graph(), label="bipartite")


# --------------------------------------------------------------------------------------------------------------------
# Edges for edge prediction
# --------------------------------------------------------------------------------------------------------------------

def negative_edges(A: torch.Tensor, n: int, *, generator, exclude: torch.Tensor | None = None,
                   node_graph: torch.Tensor | None = None) -> torch.Tensor:
    """``n`` distinct node pairs ``(m, k)``, m < k, that are not edges of A, drawn uniformly without replacement.

    Args:
        A: (N, N) adjacency.
        n: how many pairs (0 allowed).
        generator: a ``torch.Generator`` or an int seed.
        exclude: (M, 2) pairs (either order) not to draw either, e.g. held-out edges. Default None.
        node_graph: (N,) graph numbers of a batch: pairs are drawn within one graph only. Default None.

    Returns:
        (n, 2) long, sorted pairs ``m < k``.
    """
    owner = "negative_edges"
    check_tensor(A, "A", owner, ndim=2, dtype="real")
    if A.shape[0] != A.shape[1]:
        _refuse("A", owner, "a square (N, N) tensor", f"shape {tuple(A.shape)}")
    n = check_int(n, "n", owner, minimum=0)
    generator = as_generator(generator, owner, optional=False)
    N = A.shape[0]
    free = torch.triu(A.detach().cpu() == 0, diagonal=1)  # (N, N): candidate pairs m < k that are not edges
    if node_graph is not None:
        node_graph = check_tensor(node_graph, "node_graph", owner, shape=(N,), dtype="int").cpu()
        free &= node_graph[:, None] == node_graph[None, :]
    if exclude is not None:
        check_tensor(exclude, "exclude", owner, shape=("M", 2), dtype="int")
        pairs = exclude.cpu().long()
        if pairs.numel() and (int(pairs.min()) < 0 or int(pairs.max()) >= N):
            _refuse("exclude", owner, f"node numbers in [0, {N})", f"[{int(pairs.min())}, {int(pairs.max())}]")
        free[pairs.min(1).values, pairs.max(1).values] = False
    candidates = free.nonzero()  # (C, 2)
    if n > len(candidates):
        _refuse("n", owner, f"at most {len(candidates)} (the node pairs that are not edges)", str(n))
    pick = torch.randperm(len(candidates), generator=generator)[:n]
    return candidates[pick.sort().values].to(A.device)


def split_edges(graph: Graph, fraction: float, *, generator) -> tuple[Graph, torch.Tensor, torch.Tensor]:
    """Hold out a random ``fraction`` of a graph's edges for edge prediction, with as many non-edges.

    Args:
        graph: a :class:`Graph` (a batch too).
        fraction: the share of edges held out, in (0, 1); M = round(fraction · N_E), at least 1.
        generator: a ``torch.Generator`` or an int seed.

    Returns:
        ``(train_graph, positive (M, 2), negative (M, 2))``: the graph without the held-out
        edges (E's columns dropped with them), the held-out edges, and M pairs that are
        edges of neither graph (within one graph of a batch), all as pairs m < k.
    """
    owner = "split_edges"
    check_instance(graph, "graph", owner, Graph)
    fraction = check_float(fraction, "fraction", owner, low=0.0, high=1.0, low_open=True, high_open=True)
    generator = as_generator(generator, owner, optional=False)
    edges = graph.edges.cpu()
    if len(edges) < 2:
        _refuse("graph", owner, "a graph with at least 2 edges", f"{len(edges)} edges")
    m = min(max(1, round(fraction * len(edges))), len(edges) - 1)
    order = torch.randperm(len(edges), generator=generator)
    held, kept = order[:m].sort().values, order[m:].sort().values
    positive = edges[held]
    negative = negative_edges(graph.A, m, generator=generator, node_graph=graph.node_graph)
    device = graph.A.device
    A = _adjacency(graph.n_nodes, edges[kept].to(device)).to(graph.A.dtype)
    E = None if graph.E is None else graph.E[:, kept.to(graph.E.device)]
    train = _unchecked(A=A, X=graph.X, E=E, y=graph.y, node_graph=graph.node_graph)
    return train, positive.to(device), negative.to(device)


# --------------------------------------------------------------------------------------------------------------------
# Walks (fig. 13.4) and the edge graph (fig. 13.13)
# --------------------------------------------------------------------------------------------------------------------

def walks(A: torch.Tensor, k: int, start: int) -> list[tuple[int, ...]]:
    """Every walk of ``k`` steps from node ``start``, written out: tuples of k + 1 nodes (by enumeration).

    A walk may revisit nodes and edges. Depth-first over neighbours, so there are
    ``(A^k)[start].sum()`` of them (UDL §13.2.1, fig. 13.4); keep k small.
    """
    owner = "walks"
    check_tensor(A, "A", owner, ndim=2, dtype="real")
    k = check_int(k, "k", owner, minimum=0)
    start = check_int(start, "start", owner, minimum=0, maximum=A.shape[0] - 1)
    neighbours = [row.nonzero().flatten().tolist() for row in A.detach().cpu()]
    found, stack = [], [(start,)]
    while stack:
        walk = stack.pop()
        if len(walk) == k + 1:
            found.append(walk)
        else:
            stack.extend(walk + (n,) for n in reversed(neighbours[walk[-1]]))
    return found


def count_walks(A: torch.Tensor, k: int) -> torch.Tensor:
    """(N, N) long: entry (m, n) is the number of k-step walks from m to n, counted by enumerating them.

    The book's claim (§13.2.1) is that this equals A^k; this function does not use it.

    Example::

        >>> A = torch.tensor([[0., 1, 1], [1, 0, 1], [1, 1, 0]])  # a triangle
        >>> count_walks(A, 2).tolist()
        [[2, 1, 1], [1, 2, 1], [1, 1, 2]]
    """
    check_tensor(A, "A", "count_walks", ndim=2, dtype="real")
    k = check_int(k, "k", "count_walks", minimum=0)
    counts = torch.zeros(A.shape[0], A.shape[0], dtype=torch.long)
    for m in range(A.shape[0]):
        for walk in walks(A, k, m):
            counts[m, walk[-1]] += 1
    return counts


def edge_graph(graph: Graph) -> Graph:
    """The edge graph (line graph) of fig. 13.13: one node per edge, joined when the two edges share a node.

    With the (N, N_E) incidence matrix B (``B[n, j] = 1`` when edge j touches node n),
    the edge graph's adjacency is ``BᵀB - 2I`` (two distinct edges of a simple graph share
    at most one node). Node j of the result is edge ``graph.edges[j]``; its node data are
    E's columns (or D = 0 when there is no E), and its edge data are the original data X of
    the node each pair of edges shares: the roles of nodes and edges swap (§13.9).

    Example::

        >>> edge_graph(from_networkx(nx.path_graph(4))).edges.tolist()  # edges 01, 12, 23 form a path
        [[0, 1], [1, 2]]
    """
    check_instance(graph, "graph", "edge_graph", Graph)
    edges = graph.edges  # (N_E, 2)
    n_e = len(edges)
    B = torch.zeros(graph.n_nodes, n_e, device=edges.device)  # (N, N_E) incidence
    columns = torch.arange(n_e, device=edges.device)
    B[edges[:, 0], columns] = 1.0
    B[edges[:, 1], columns] = 1.0
    A = B.T @ B - 2 * torch.eye(n_e, device=B.device)  # (N_E, N_E): 1 where two edges share a node
    X = graph.E if graph.E is not None else torch.zeros(0, n_e, device=B.device)
    line_edges = torch.triu(A, diagonal=1).nonzero()  # (N_EE, 2)
    shared = (B[:, line_edges[:, 0]] * B[:, line_edges[:, 1]]).argmax(0)  # the node both edges touch
    return _unchecked(A=A, X=X, E=graph.X[:, shared], y=None, node_graph=None)


# --------------------------------------------------------------------------------------------------------------------
# Seeded labelled families
# --------------------------------------------------------------------------------------------------------------------

def _preferential_attachment(n: int, m: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Barabási-Albert growth: a star of m + 1 nodes, then each new node joins m distinct nodes chosen by degree."""
    edges = [(i, m) for i in range(m)]  # nodes 0..m-1 joined to node m: m edges
    ends = [v for e in edges for v in e]  # each node listed once per edge end: sampling ∝ degree
    for new in range(m + 1, n):
        targets: set[int] = set()
        while len(targets) < m:
            targets.add(ends[int(rng.integers(len(ends)))])
        for t in sorted(targets):
            edges.append((t, new))
            ends += [t, new]
    return edges


def _uniform_edges(n: int, n_edges: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """G(n, M): ``n_edges`` distinct pairs drawn uniformly from all n(n-1)/2."""
    rows, cols = np.triu_indices(n, k=1)
    pick = rng.choice(len(rows), size=n_edges, replace=False)
    return list(zip(rows[pick].tolist(), cols[pick].tolist()))


def _node_features(n: int, d: int, rng: np.random.Generator) -> torch.Tensor:
    """(d, n): a row of ones, then d - 1 rows of N(0, 1) noise; the same distribution for every node of every class."""
    X = np.ones((d, n), dtype=np.float32)
    X[1:] = rng.standard_normal((d - 1, n))
    return torch.from_numpy(X)


def graph_classification_set(n: int, *, seed: int, n_nodes: int = 24, m: int = 2, d: int = 4) -> list[Graph]:
    """``n`` graphs labelled by how their edges are spread over the nodes: uniform (0) or hub-dominated (1).

    What decides the label: class 1 graphs grow by preferential attachment (Barabási-Albert,
    each new node joins ``m`` existing nodes chosen with probability ∝ degree), so a few hubs
    collect many edges; class 0 graphs have the SAME number of nodes and exactly the SAME
    number of edges, M = m (N - m), placed uniformly at random (Erdős-Rényi G(N, M)), so
    degrees stay near their mean 2M/N. Node data X (D, N) are a row of ones and D - 1 rows
    of N(0, 1) noise in both classes.

    Why a structure-blind baseline is at chance: N, M and the distribution of every node's
    data are identical in the two classes, so any function of the node features pooled
    over the graph, of N, or of M, has the same distribution whatever the label. Only A
    tells them apart: the largest degree or the spread of the degrees separates the classes,
    and a graph network sees degrees after one layer (sum aggregation of the row of ones).

    Args:
        n: the number of graphs.
        seed: names the data set; graph i is drawn from ``np.random.default_rng([seed, i])``,
            so it does not depend on ``n``.
        n_nodes: N, nodes per graph (at least m + 2). Default 24.
        m: edges added per new node in class 1 (at least 1). Default 2.
        d: D, node data per node (at least 1; the first is the constant 1). Default 4.

    Returns:
        A list of :class:`Graph`, each with ``y`` of shape () (0 or 1, each with probability 1/2).
    """
    owner = "graph_classification_set"
    n = check_int(n, "n", owner)
    seed = check_int(seed, "seed", owner, minimum=0)
    m = check_int(m, "m", owner, maximum=64)
    n_nodes = check_int(n_nodes, "n_nodes", owner, minimum=m + 2, maximum=10_000)
    d = check_int(d, "d", owner)
    graphs = []
    n_edges = m * (n_nodes - m)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        label = int(rng.integers(2))
        pairs = _preferential_attachment(n_nodes, m, rng) if label else _uniform_edges(n_nodes, n_edges, rng)
        order = rng.permutation(n_nodes)  # node numbers carry no information
        edges = torch.as_tensor(order[np.array(pairs)], dtype=torch.long)
        graphs.append(_unchecked(A=_adjacency(n_nodes, edges), X=_node_features(n_nodes, d, rng), E=None,
                                 y=torch.tensor(label), node_graph=None))
    return graphs


def node_classification_graphs(n: int, *, seed: int, n_nodes: int = 40, p_in: float = 0.3, p_out: float = 0.02,
                               hint: float = 0.4, d: int = 4) -> list[Graph]:
    """``n`` two-community graphs whose node labels are the communities (a stochastic block model).

    What decides the label: each node is put in community 0 or 1 (probability 1/2 each),
    and pairs are joined with probability ``p_in`` inside a community and ``p_out``
    between them. A node's own data are a weak hint: X's first row is N(±hint, 1) (+ for
    community 1), the other D - 1 rows N(0, 1) noise. From its own data alone the best
    accuracy is Φ(hint) (0.66 for hint = 0.4); averaging over its neighbours, most of them
    in its own community, removes the noise, so a graph network does much better.

    Args:
        n: the number of graphs.
        seed: names the data set; graph i is drawn from ``np.random.default_rng([seed, i])``.
        n_nodes: N per graph (at least 2). Default 40.
        p_in, p_out: edge probabilities inside and between communities, in [0, 1]. Defaults 0.3, 0.02.
        hint: the mean shift of the first feature, >= 0. Default 0.4.
        d: D (at least 1). Default 4.

    Returns:
        A list of :class:`Graph`, each with node labels ``y`` (N,) long.
    """
    owner = "node_classification_graphs"
    n = check_int(n, "n", owner)
    seed = check_int(seed, "seed", owner, minimum=0)
    n_nodes = check_int(n_nodes, "n_nodes", owner, minimum=2, maximum=10_000)
    p_in = check_float(p_in, "p_in", owner, low=0.0, high=1.0)
    p_out = check_float(p_out, "p_out", owner, low=0.0, high=1.0)
    hint = check_float(hint, "hint", owner, low=0.0)
    d = check_int(d, "d", owner)
    graphs = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        labels = rng.integers(2, size=n_nodes)
        p = np.where(labels[:, None] == labels[None, :], p_in, p_out)  # (N, N)
        upper = np.triu(rng.random((n_nodes, n_nodes)) < p, k=1)
        A = torch.from_numpy((upper | upper.T).astype(np.float32))
        X = rng.standard_normal((d, n_nodes)).astype(np.float32)
        X[0] += hint * (2 * labels - 1)
        graphs.append(_unchecked(A=A, X=torch.from_numpy(X), E=None, y=torch.from_numpy(labels).long(),
                                 node_graph=None))
    return graphs
