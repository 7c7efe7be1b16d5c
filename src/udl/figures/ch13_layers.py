"""Chapter 13: graph convolutional layers — the simple layer (fig. 13.7), receptive fields (fig. 13.9), and graph
convolution, dot-product attention and graph attention side by side (fig. 13.12).

The comparisons with PyTorch Geometric's ``GCNConv`` and ``GATConv`` run when torch_geometric
is installed (udl's test extra); without it those two claims are recorded as not tested.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import torch
from matplotlib.patches import Circle
from torch import nn

from udl import drawing, style
from udl.analysis.compare import max_difference
from udl.analysis.graph_receptive_field import graph_input_sensitivity, hop_distances, k_hop_neighbourhood
from udl.nn.attention import book_self_attention
from udl.nn.graph import (AGGREGATIONS, COMBINES, GraphAttention, GraphConv, GraphSequential, propagation_matrix,
                          readout)
from udl.registry import Check, Limit, Result, figure

# The seven-node example graph of figs. 13.7 and 13.12 (nodes 0..6, drawn 1..7) and where it is drawn.
EDGES = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 4), (3, 4), (3, 5), (4, 6), (5, 6)]
POS = {0: (0.0, 1.0), 1: (1.0, 2.0), 2: (1.0, 0.0), 3: (2.3, 2.0), 4: (2.3, 0.0), 5: (3.5, 1.8), 6: (3.5, 0.2)}
N_EXAMPLE = len(POS)
RANDOM_P = 0.3  # edge probability of the random graphs the checks also run on
EXACT = 1e-10  # float64: equalities that hold up to rounding, relative to entries above one
PYG_TOL = 1e-5  # float32: udl's layers against PyTorch Geometric's, relative to entries above one


def _adjacency(n: int, edges, dtype=torch.float64) -> torch.Tensor:
    A = torch.zeros(n, n, dtype=dtype)
    for m, k in edges:
        A[m, k] = A[k, m] = 1.0
    return A


def _random_adjacencies(n: int, max_nodes: int, rng: np.random.Generator) -> list[torch.Tensor]:
    """``n`` random graphs G(N, p) with N drawn from 2 ... max_nodes (isolated nodes included)."""
    graphs = [nx.gnp_random_graph(int(rng.integers(2, max_nodes + 1)), RANDOM_P, seed=int(rng.integers(2 ** 31)))
              for _ in range(n)]
    return [_adjacency(g.number_of_nodes(), g.edges) for g in graphs]


def _example() -> torch.Tensor:
    return _adjacency(N_EXAMPLE, EDGES)


def _pyg():
    """torch_geometric.nn, or None when it is not installed (it is only in udl's test extra)."""
    try:
        import torch_geometric.nn as pyg_nn
    except ImportError:
        return None
    return pyg_nn


def _gap(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """Largest difference relative to the largest entry when that exceeds one (float32 rounding grows with it)."""
    return max_difference(ours, theirs) / max(1.0, theirs.detach().abs().max().item())


def _pyg_gap(ours: nn.Module, ref: nn.Module, pairs, A: torch.Tensor, g: torch.Generator) -> float:
    """Values and gradients (input and every parameter) of udl's layer against PyG's, float32, on graph A.

    ``pairs`` lists (udl parameter, function of the PyG layer giving the same tensor in udl's layout).
    """
    N = A.shape[0]
    H = torch.randn(ours.d_in, N, generator=g).requires_grad_()  # (D, N)
    X = H.detach().T.clone().requires_grad_()  # PyG: one row per node
    got, want = ours(H, A), ref(X, A.nonzero().T.contiguous()).T
    r = torch.randn(want.shape, generator=g)  # a loss that depends on every output
    (got * r).sum().backward()
    (want * r).sum().backward()
    gaps = [_gap(got, want), _gap(H.grad, X.grad.T)]
    gaps += [_gap(getattr(ours, name).grad, theirs(ref)) for name, theirs in pairs]
    return max(gaps)


def _gcnconv_gap(pyg, adjacencies, d_in: int, d_out: int, g: torch.Generator) -> float:
    """udl's ``GraphConv(aggregation="kipf")`` against ``GCNConv`` with the same weights, over several graphs."""
    worst = 0.0
    for A in adjacencies:
        ours = GraphConv(d_in, d_out, aggregation="kipf", activation="identity", generator=g)
        with torch.no_grad():
            ours.beta.normal_(generator=g)  # β starts at zero: make it count
        with torch.random.fork_rng(devices=[]):  # PyG draws its initial weights from torch's global generator
            ref = pyg.GCNConv(d_in, d_out)
        with torch.no_grad():
            ref.lin.weight.copy_(ours.omega)
            ref.bias.copy_(ours.beta)
        worst = max(worst, _pyg_gap(ours, ref, [("omega", lambda m: m.lin.weight.grad),
                                                ("beta", lambda m: m.bias.grad)], A.float(), g))
    return worst


def _gatconv_gap(pyg, adjacencies, d_in: int, d_out: int, heads: int, g: torch.Generator) -> float:
    """udl's ``GraphAttention`` against ``GATConv`` with the same weights, heads stacked and averaged."""
    worst = 0.0
    for i, A in enumerate(adjacencies):
        concat = i % 2 == 0
        ours = GraphAttention(d_in, d_out, heads=heads, concat=concat, activation="identity", generator=g)
        with torch.no_grad():
            ours.beta.normal_(generator=g)
        with torch.random.fork_rng(devices=[]):
            ref = pyg.GATConv(d_in, d_out, heads=heads, concat=concat)
        with torch.no_grad():
            ref.lin.weight.copy_(ours.omega)
            ref.att_src.copy_(ours.phi[:, :d_out][None])  # φ's first half scores the neighbour (PyG's source)
            ref.att_dst.copy_(ours.phi[:, d_out:][None])
            ref.bias.copy_(ours.beta)
        pairs = [("omega", lambda m: m.lin.weight.grad), ("beta", lambda m: m.bias.grad),
                 ("phi", lambda m: torch.cat([m.att_src.grad[0], m.att_dst.grad[0]], 1))]
        worst = max(worst, _pyg_gap(ours, ref, pairs, A.float(), g))
    return worst


# --------------------------------------------------------------------------- drawing helpers (no computation)
def _draw_graph(ax, pos, edges, *, faces=None, edge_color="0.45", lw=1.2, r=0.22, labels=True, rings=None,
                fontsize=8):
    """Nodes as circles (numbered from 1, as the book numbers them) joined by straight edges."""
    for m, n in edges:
        ax.plot([pos[m][0], pos[n][0]], [pos[m][1], pos[n][1]], color=edge_color, lw=lw, zorder=1)
    for v, xy in pos.items():
        face = "white" if faces is None else faces[v]
        lw_v = 2.2 if rings is not None and rings[v] else 1.0
        drawing.node(ax, xy, str(v + 1) if labels else "", r=r, face=face, lw=lw_v, fontsize=fontsize)


def _column(ax, values, top, *, color=None, step=0.22, vmax=None, fmt=None, fontsize=5.5):
    """A column vector as cells, its top cell centred at ``top``; signed colours unless ``color``."""
    drawing.grid(ax, np.asarray(values, dtype=float)[:, None], top, step=step, fmt=fmt, lw=0.4, color=color,
                 vmax=vmax, fontsize=fontsize)


# --------------------------------------------------------------------------- 13.7
def _variants():
    """Every layer kind of udl.nn.graph, as (name, constructor of a layer from d_in to 3)."""
    kinds = [(f"{a}/{c}", lambda d, g, a=a, c=c: GraphConv(d, 3, aggregation=a, combine=c, generator=g))
             for a in AGGREGATIONS if a != "kipf" for c in COMBINES]
    kinds.append(("kipf", lambda d, g: GraphConv(d, 3, aggregation="kipf", generator=g)))
    kinds += [(f"attention/{'concat' if c else 'mean'}",
               lambda d, g, c=c: GraphAttention(d, 3, heads=2, concat=c, generator=g)) for c in (True, False)]
    return kinds


def _equivariance_gap(layer, A: torch.Tensor, X: torch.Tensor, g: torch.Generator) -> float:
    """max |f(X P, Pᵀ A P) - f(X, A) P| for a random permutation matrix P (float64)."""
    N = A.shape[0]
    P = torch.eye(N, dtype=A.dtype)[:, torch.randperm(N, generator=g)]  # X P: column j is x_perm[j]
    return _gap(layer(X @ P, P.T @ A @ P), layer(X, A) @ P)


@figure("13.7", title="The simple graph convolutional layer",
        caption="a) A graph: its structure is the adjacency matrix A and each node carries an embedding, a column of "
                "X (orange cells). b) One node's update in the first layer: the embeddings of its neighbours are "
                "summed, the node's own embedding is added, the same linear map Ω₀ is applied, the bias β₀ added "
                "and a ReLU applied, giving the node's new embedding (cyan). Every node uses the same Ω₀ and β₀. "
                "c) Layer after layer, each with its own parameters, the embeddings H_k keep one column per node "
                "until the last layer's. d) What is measured: the node's update written out from its neighbour "
                "list equals the layer's matrix form a[β1ᵀ + ΩH(A + I)]; renumbering the nodes (X P, PᵀAP) "
                "renumbers the outputs in the same way (equivariance) for every layer variant of udl.nn.graph, "
                "and the Kipf-normalised layer equals PyTorch Geometric's GCNConv with the same weights.",
        params={"tiny": dict(d=4, widths=[4, 4, 3], node=3, n_random=5, random_nodes=12),
                "full": dict(d=4, widths=[4, 4, 3], node=3, n_random=60, random_nodes=40)},
        limits={"d": (1, 8), "widths": Limit(1, 8, min_len=1, max_len=5), "node": (0, N_EXAMPLE - 1),
                "n_random": (0, 500), "random_nodes": (2, 60)})
def simple_layer(p, run):
    g = run.generator(0)
    A = _example()
    X = torch.randn(p.d, N_EXAMPLE, generator=g, dtype=torch.float64)  # (D, N): a column per node
    layers, d = [], p.d
    for width in p.widths:
        layers.append(GraphConv(d, width, generator=g).double())
        d = width
    Hs = [X]
    with torch.no_grad():
        for layer in layers:
            Hs.append(layer(Hs[-1], A))  # H_{k+1} = a[β_k 1ᵀ + Ω_k H_k (A + I)]
        # b) the first layer's update of each node, from its neighbour list
        first = layers[0]
        steps = {}
        by_hand = []
        for n in range(N_EXAMPLE):
            ne = [m for m in range(N_EXAMPLE) if A[m, n]]
            agg = X[:, ne].sum(1)  # Σ_{m ∈ ne[n]} x_m
            pre = first.beta + first.omega @ (agg + X[:, n])  # β₀ + Ω₀ (agg + x_n)
            by_hand.append(torch.relu(pre))
            if n == p.node:
                steps = {"neighbours": ne, "agg": agg, "with_node": agg + X[:, n], "pre": pre, "out": by_hand[-1]}
        node_gap = _gap(torch.stack(by_hand, 1), Hs[1])

        # d) equivariance of every layer kind, on the example and random graphs
        adjacencies = [A] + _random_adjacencies(p.n_random, p.random_nodes, run.rng)
        equivariance = {}
        for name, make in _variants():
            layer = make(3, g).double()
            with torch.no_grad():
                if layer.beta is not None:
                    layer.beta.normal_(generator=g)
            equivariance[name] = max(_equivariance_gap(layer, B, torch.randn(3, B.shape[0], generator=g,
                                                                              dtype=torch.float64), g)
                                     for B in adjacencies)
        # the whole network, and its mean readout (invariant, not equivariant)
        net_gap, readout_gap = 0.0, 0.0
        for B in adjacencies:
            N = B.shape[0]
            Z = torch.randn(p.d, N, generator=g, dtype=torch.float64)
            P = torch.eye(N, dtype=torch.float64)[:, torch.randperm(N, generator=g)]
            out, out_p = Z, Z @ P
            Bp = P.T @ B @ P
            for layer in layers:
                out, out_p = layer(out, B), layer(out_p, Bp)
            net_gap = max(net_gap, _gap(out_p, out @ P))
            one = torch.zeros(N, dtype=torch.long)
            readout_gap = max(readout_gap, _gap(readout(out_p, one, 1), readout(out, one, 1)))
        # the book's form of Kipf normalisation, Ω H (D^-½ A D^-½ + I), against GCNConv's D̃^-½ (A + I) D̃^-½
        book_vs_kipf = max_difference(propagation_matrix(A, "symmetric"), propagation_matrix(A, "kipf"))

    pyg = _pyg()
    gcnconv = _gcnconv_gap(pyg, adjacencies, p.d, 3, g) if pyg is not None else None
    return Result(
        metrics={"node": p.node, "widths": list(p.widths), "shapes": [list(H.shape) for H in Hs],
                 "neighbours": steps["neighbours"], "node_formula_gap": node_gap,
                 "equivariance_gap": equivariance, "network_equivariance_gap": net_gap,
                 "readout_invariance_gap": readout_gap, "n_graphs": len(adjacencies),
                 "gcnconv_gap": gcnconv, "book_kipf_vs_gcnconv_matrix": book_vs_kipf},
        arrays={**{f"H{k}": H.numpy() for k, H in enumerate(Hs)},
                **{k: v.numpy() for k, v in steps.items() if k != "neighbours"},
                "neighbour_x": X[:, steps["neighbours"]].numpy(), "x_node": X[:, p.node].numpy()},
        notes="Equivariance is measured in float64 on the example graph and the random graphs G(N, 0.3), one random "
              "renumbering each, for every aggregation (sum, mean, symmetric, max) with every way of adding the node "
              "(add, diagonal, separate, residual), the Kipf layer and graph attention. The book writes Kipf "
              "normalisation as Ω H (D^-½ A D^-½ + I); GCNConv normalises after adding the self-loop, "
              "D̃^-½ (A + I) D̃^-½. udl has both ('symmetric' and 'kipf'); the second equals GCNConv."
              + ("" if pyg is not None else " torch_geometric is not installed: the comparison with GCNConv was "
                                            "skipped."))


@simple_layer.plot
def _(r):
    m, a = r.metrics, r.arrays
    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(11.0, 6.4), layout="constrained")
        axes = fig.subplot_mosaic([["a", "b", "b"], ["c", "c", "d"]], height_ratios=[1.0, 1.0],
                                  width_ratios=[1.0, 0.75, 0.9])
    ax_a, ax_b, ax_c, ax_d = (axes[k] for k in "abcd")
    node = m["node"]
    H0 = a["H0"]
    vmax = float(np.abs(H0).max())

    # a) the graph with its node embeddings
    faces = {v: style.DATA if v == node else "white" for v in POS}
    _draw_graph(ax_a, POS, EDGES, faces=faces)
    for v, (x, y) in POS.items():
        _column(ax_a, H0[:, v], (x + 0.4, y + 0.3), vmax=vmax, step=0.17)
    drawing.frame(ax_a, (-0.4, 4.2), (-0.7, 2.6))
    ax_a.set_title("a) a graph; node n carries x_n, a column of X", loc="left", fontsize=9)

    # b) one node's update, step by step
    step = 0.36
    nb = a["neighbour_x"]
    col = lambda values, x, **kw: _column(ax_b, values, (x, 0.0), step=step, fmt="{:.1f}", fontsize=6.5, **kw)
    for i in range(nb.shape[1]):
        col(nb[:, i], 0.42 * i, vmax=vmax)
        ax_b.text(0.42 * i, 0.3, f"x{m['neighbours'][i] + 1}", ha="center", fontsize=7.5)
    y_arrow = -step * (H0.shape[0] - 1) / 2
    prev, x = 0.42 * (nb.shape[1] - 1) + 0.25, 0.42 * nb.shape[1] + 1.0
    steps = [("agg", "sum", "agg", None), ("with_node", f"+ x{node + 1}", "", None),
             ("pre", "Ω₀ • + β₀", "", None), ("out", "ReLU", f"h{node + 1}", style.MODEL)]
    for key, label, name, color in steps:
        drawing.arrow(ax_b, (prev, y_arrow), (x - 0.25, y_arrow), lw=0.9, head=7)
        ax_b.text((prev + x - 0.25) / 2, y_arrow + 0.12, label, ha="center", va="bottom", fontsize=7.5)
        col(a[key], x, color=color, vmax=None if color is None else float(np.abs(a[key]).max()) or 1.0)
        if name:
            ax_b.text(x, 0.3, name, ha="center", fontsize=7.5)
        prev, x = x + 0.25, x + 1.5
    rows = max(H0.shape[0], a["out"].shape[0])
    ax_b.text(-0.2, -step * rows - 0.25,
              f"h{node + 1} = ReLU[β₀ + Ω₀ (Σ over neighbours x_m + x{node + 1})]\n"
              f"every node is updated with the same Ω₀ and β₀", fontsize=8, va="top")
    drawing.frame(ax_b, (-0.4, x - 1.0), (-step * rows - 1.0, 0.8))
    ax_b.set_title(f"b) the first layer at node {node + 1} (orange)", loc="left", fontsize=9)

    # c) the embeddings layer by layer
    xs, cell = 0.0, 0.3
    n_nodes = H0.shape[1]
    k_max = len(m["shapes"])
    for k in range(k_max):
        H = a[f"H{k}"]
        drawing.grid(ax_c, H, (xs, 0.0), step=cell, fmt=None, lw=0.3)  # signed colours: red > 0, blue < 0
        ax_c.text(xs + cell * (n_nodes - 1) / 2, 0.3, "X = H0" if k == 0 else f"H{k}", ha="center", fontsize=8)
        ax_c.text(xs + cell * (n_nodes - 1) / 2, -cell * H.shape[0] + 0.05, f"{H.shape[0]} × {H.shape[1]}",
                  ha="center", va="top", fontsize=7)
        if k < k_max - 1:
            x0 = xs + cell * n_nodes - 0.05
            drawing.arrow(ax_c, (x0, -0.45), (x0 + 0.7, -0.45), lw=0.9, head=7)
            ax_c.text(x0 + 0.35, -0.35, f"Ω{k}, β{k}", ha="center", va="bottom", fontsize=7)
        xs += cell * n_nodes + 0.85
    rows = max(s[0] for s in m["shapes"])
    drawing.frame(ax_c, (-0.3, xs - 0.6), (-cell * rows - 0.6, 0.7))
    ax_c.set_title("c) the embeddings H_k, one column per node, layer after layer", loc="left", fontsize=9)

    # d) what was measured
    rows_d = [("node update = matrix form", m["node_formula_gap"], EXACT),
              (f"equivariance, {len(m['equivariance_gap'])} layer kinds", max(m["equivariance_gap"].values()), EXACT),
              ("whole network equivariant", m["network_equivariance_gap"], EXACT),
              ("mean readout invariant", m["readout_invariance_gap"], EXACT)]
    if m["gcnconv_gap"] is not None:
        rows_d.append(("Kipf layer vs GCNConv (float32)", m["gcnconv_gap"], PYG_TOL))
    floor = 1e-18
    ys = np.arange(len(rows_d))[::-1]
    ax_d.barh(ys, [max(v, floor) - floor for _, v, _ in rows_d], color=style.MODEL, height=0.55, left=floor)
    for y, (_, v, tol) in zip(ys, rows_d):
        ax_d.plot([tol, tol], [y - 0.35, y + 0.35], color=style.TRUTH, lw=1.5)
        ax_d.text(max(v, floor) * 3, y, f"{v:.1e}" if v else "0 (exact)", va="center", fontsize=7)
    ax_d.set_xscale("log")
    ax_d.set_xlim(floor, 1e-2)
    ax_d.set_yticks(ys, [name for name, _, _ in rows_d], fontsize=7.5)
    ax_d.set_xlabel(f"largest difference, {m['n_graphs']} graphs (black: tolerance)", fontsize=8)
    ax_d.set_title("d) measured", loc="left", fontsize=9)
    return fig


@simple_layer.checks
def _(r):
    m = r.metrics
    worst_kind = max(m["equivariance_gap"], key=m["equivariance_gap"].get)
    checks = [
        Check.less("b) each node's update from its neighbour list, ReLU[β₀ + Ω₀(Σ_m x_m + x_n)], equals "
                   "the layer's matrix form a[β1ᵀ + ΩH(A + I)] (float64, all nodes)", m["node_formula_gap"], EXACT),
        Check.equal("c) every layer keeps one column per node", [s[1] for s in m["shapes"]],
                    [N_EXAMPLE] * len(m["shapes"])),
        Check.less(f"renumbering the nodes renumbers every layer's output the same way, f(XP, PᵀAP) = f(X, A)P, for "
                   f"all {len(m['equivariance_gap'])} layer kinds (worst: {worst_kind}; float64, "
                   f"{m['n_graphs']} graphs)", m["equivariance_gap"][worst_kind], EXACT),
        Check.less("the whole network is equivariant too", m["network_equivariance_gap"], EXACT),
        Check.less("its mean readout does not change with the numbering (invariance)", m["readout_invariance_gap"],
                   EXACT),
    ]
    claim = ("the Kipf-normalised layer D̃^-½(A + I)D̃^-½ equals torch_geometric's GCNConv with the same weights "
             "(values and gradients, float32, relative to entries above one)")
    checks.append(Check.less(claim, m["gcnconv_gap"], PYG_TOL) if m["gcnconv_gap"] is not None
                  else Check.untested(claim, "torch_geometric is not installed"))
    return checks


# --------------------------------------------------------------------------- 13.9
KINDS_13_9 = ("sum", "kipf", "mean", "attention")  # the networks whose receptive fields are measured


def _network(kind: str, depth: int, d_in: int, width: int, g: torch.Generator) -> nn.Module:
    """``depth`` layers of one kind, as one module taking (H, A)."""
    layers, d = [], d_in
    for _ in range(depth):
        layer = GraphAttention(d, width, heads=2, concat=False, generator=g) if kind == "attention" \
            else GraphConv(d, width, aggregation=kind, generator=g)
        layers.append(layer)
        d = layer.output_size

    return GraphSequential(layers).double()


def _geometric_graph(n: int, mean_degree: float, seed: int) -> tuple[torch.Tensor, dict]:
    """A random geometric graph in the unit square (nodes joined when close), its largest connected part."""
    radius = math.sqrt(mean_degree / (math.pi * n))  # n π r² ≈ the expected degree, away from the borders
    g = nx.random_geometric_graph(n, radius, seed=seed)
    part = max(nx.connected_components(g), key=len)
    g = nx.convert_node_labels_to_integers(g.subgraph(part).copy(), ordering="sorted")
    pos = {v: tuple(g.nodes[v]["pos"]) for v in g.nodes}
    return _adjacency(g.number_of_nodes(), g.edges), pos


@figure("13.9", title="Receptive fields of a graph network",
        caption="Which input nodes reach one node (orange) after K graph convolutional layers. Gray halos: the "
                "K-hop neighbourhood, every node joined to the orange one by a walk of at most K edges, found by "
                "breadth-first search on the graph. Cyan: the input nodes whose embeddings change the orange node's "
                "output, measured as the gradient |∂h_n/∂x_m| of a K-layer network (darker is larger), zero "
                "elsewhere. The two coincide: each layer reaches one edge further, so K layers see exactly the "
                "K-hop neighbourhood, the graph's counterpart of a convolution's receptive field. Last panel: the "
                "size of the field over all nodes grows with K until it fills the graph.",
        params={"tiny": dict(n_nodes=30, mean_degree=5.0, depths=[1, 2, 3], width=8, n_probes=4, n_random=2),
                "full": dict(n_nodes=60, mean_degree=5.0, depths=[1, 2, 3, 4], width=16, n_probes=4, n_random=10)},
        limits={"n_nodes": (4, 80), "mean_degree": (1.0, 10.0), "depths": Limit(1, 6, min_len=1, max_len=6),
                "width": (8, 32), "n_probes": (4, 8), "n_random": (0, 10)})
def receptive_fields(p, run):
    g = run.generator(0)
    A, pos = _geometric_graph(p.n_nodes, p.mean_degree, run.seed)
    N = A.shape[0]
    centre = np.array([0.5, 0.5])
    target = int(np.argmin([np.hypot(*(np.array(pos[v]) - centre)) for v in range(N)]))  # the node nearest the centre
    depths = sorted(set(p.depths))
    graphs = [A] + [_geometric_graph(p.n_nodes, p.mean_degree, run.seed + 1 + i)[0] for i in range(p.n_random)]
    mismatches = {kind: [0] * len(depths) for kind in KINDS_13_9}  # per depth: (node, input) pairs that differ
    field_sizes, bfs_sizes, drawn = {}, {}, {}  # per depth: every node's field in the drawn graph (first kind)
    for gi, B in enumerate(graphs):
        n_b = B.shape[0]
        bfs = {k: torch.stack([k_hop_neighbourhood(B, n, k) for n in range(n_b)]) for k in depths}  # (N, N)
        for kind in KINDS_13_9:
            for i, k in enumerate(depths):
                # each probe draws a new network as well as a new input: the field is the architecture's,
                # and a unit that one draw of weights leaves dead for every input does not hide a path
                sens = sum(graph_input_sensitivity(_network(kind, k, 3, p.width, g), B, 3, n_probes=1, generator=g)
                           for _ in range(p.n_probes))  # (N, N)
                mismatches[kind][i] += int(((sens > 0) != bfs[k]).sum())
                if gi == 0 and kind == KINDS_13_9[0]:
                    drawn[k] = sens[target].numpy()
                    field_sizes[k] = (sens > 0).sum(1).tolist()
                    bfs_sizes[k] = bfs[k].sum(1).tolist()
    hops = hop_distances(A, target)
    return Result(
        metrics={"n_nodes": N, "n_edges": int(A.sum() / 2), "target": target, "depths": depths,
                 "n_graphs": len(graphs), "kinds": list(KINDS_13_9), "mismatches": mismatches,
                 "field_sizes": [field_sizes[k] for k in depths], "bfs_sizes": [bfs_sizes[k] for k in depths],
                 "target_field": [int((drawn[k] > 0).sum()) for k in depths],
                 "target_eccentricity": int(hops.max())},
        arrays={"A": A.numpy(), "pos": np.array([pos[v] for v in range(N)]), "hops": hops.numpy(),
                **{f"sensitivity_{k}": drawn[k] for k in depths}},
        notes=f"The graph: {N} nodes of a random geometric graph in the unit square (its largest connected part). "
              f"Fields are measured for every node, for networks of sum (the book's simple layer), Kipf, mean and "
              f"graph-attention layers of {p.width} units, on this graph and {p.n_random} more; the panels show the "
              f"simple layer. The gradient is averaged over {p.n_probes} draws of the weights and the input, so "
              f"that a ReLU that is off for one draw does not hide a node.")


@receptive_fields.plot
def _(r):
    m, a = r.metrics, r.arrays
    depths = m["depths"]
    fig, axes = style.subplots(1, len(depths) + 1, width=2.7, height=2.9)
    pos = {v: tuple(xy) for v, xy in enumerate(a["pos"])}
    A = a["A"]
    edges = [(i, j) for i, j in zip(*np.nonzero(np.triu(A)))]
    hops, target = a["hops"], m["target"]
    for i, (ax, k) in enumerate(zip(axes, depths)):
        s = a[f"sensitivity_{k}"]
        scale = np.log10(s[s > 0]).min() if (s > 0).any() else 0.0
        top = np.log10(s.max()) if s.max() > 0 else 1.0
        for v, (x, y) in pos.items():
            if 0 <= hops[v] <= k:
                ax.add_patch(Circle((x, y), 0.045, facecolor=style.REGION, edgecolor="none", zorder=0))
        faces = {}
        for v in pos:
            if v == target:
                faces[v] = style.DATA
            elif s[v] > 0:
                faces[v] = drawing.light(style.MODEL, 0.35 + 0.65 * (np.log10(s[v]) - scale) / max(top - scale, 1e-9))
            else:
                faces[v] = "white"
        _draw_graph(ax, pos, edges, faces=faces, r=0.022, labels=False, lw=0.7, edge_color="0.55")
        drawing.frame(ax, (-0.05, 1.05), (-0.1, 1.05))
        ax.set_title(f"K = {k} layer{'s' if k > 1 else ''}", fontsize=9)
        ax.text(0.5, -0.04, f"{m['target_field'][i]} input nodes reach the orange one", ha="center", va="top",
                fontsize=7.5)
    ax = axes[-1]
    sizes, bfs = np.array(m["field_sizes"]), np.array(m["bfs_sizes"])  # (K, N) each
    ax.plot(depths, bfs.mean(1), color=style.TRUTH, lw=1.2, label="K-hop (BFS)")
    ax.plot(depths, sizes.mean(1), "o", color=style.MODEL, ms=6, mfc="none", mew=1.5, label="gradient support")
    ax.fill_between(depths, bfs.min(1), bfs.max(1), color=style.REGION, alpha=0.5, lw=0, label="range over nodes")
    ax.axhline(m["n_nodes"], color="0.5", ls=":", lw=1)
    ax.text(depths[0], m["n_nodes"], "whole graph", va="bottom", fontsize=7, color="0.4")
    ax.set_xticks(depths)
    ax.set_xlabel("layers K")
    ax.set_ylabel("nodes in the receptive field")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(0.0, 0.68))
    ax.set_ylim(0, m["n_nodes"] * 1.12)
    ax.set_title("mean over all nodes", fontsize=9)
    style.panel_labels(axes)
    return fig


@receptive_fields.checks
def _(r):
    m = r.metrics
    checks = []
    for i, k in enumerate(m["depths"]):
        per_kind = [m["mismatches"][kind][i] for kind in m["kinds"]]
        checks.append(Check.equal(f"a {k}-layer network's gradient support equals the {k}-hop neighbourhood found "
                                  f"by breadth-first search, for every node (sum, Kipf, mean and attention layers, "
                                  f"{m['n_graphs']} graphs; (node, input) pairs that differ)", sum(per_kind), 0))
    claim = "the receptive field grows with the number of layers until it fills the graph"
    depths = m["depths"]
    if len(depths) >= 2 and depths[0] < m["target_eccentricity"]:
        sizes = m["target_field"]
        ok = all(a < b or a == m["n_nodes"] for a, b in zip(sizes, sizes[1:]))
        checks.append(Check.holds(claim, ok, dict(zip(map(str, depths), sizes)), "increasing until all nodes"))
    else:
        checks.append(Check.untested(claim, "needs two depths, the smallest below the drawn node's largest distance"))
    return checks


# --------------------------------------------------------------------------- 13.12
@figure("13.12", title="Graph convolution, dot-product attention and graph attention",
        caption="Three ways to mix N embeddings (the columns of X, after a linear map X' = ΩX) into N outputs, each "
                "output a weighted sum of the columns of X'; shown are the weights, column n for output n. "
                "a) A graph convolution weighs by the graph: the matrix A + I, the same for any data. b) Dot-product "
                "self-attention computes the weights from the data, Softmax[KᵀQ/√D], and every node attends to "
                "every node, joined or not. c) Graph attention computes them from the data too, but only over each "
                "node and its neighbours: every weight off the graph is exactly zero (hatched cells: pairs that are "
                "not joined). d) The graph attention weights of one node drawn on the graph. udl's graph attention "
                "equals PyTorch Geometric's GATConv with the same weights.",
        params={"tiny": dict(d=4, heads=2, node=3, n_random=5, random_nodes=12),
                "full": dict(d=4, heads=2, node=3, n_random=60, random_nodes=40)},
        limits={"d": (1, 16), "heads": (1, 8), "node": (0, N_EXAMPLE - 1), "n_random": (0, 500),
                "random_nodes": (2, 60)})
def attention_comparison(p, run):
    g = run.generator(0)
    A = _example()
    N = N_EXAMPLE
    X = torch.randn(p.d, N, generator=g, dtype=torch.float64)
    eye = torch.eye(N, dtype=torch.float64)
    with torch.no_grad():
        gcn = propagation_matrix(A, "sum")  # A + I
        weights = [torch.randn(p.d, p.d, generator=g, dtype=torch.float64) / math.sqrt(p.d) for _ in range(3)]
        zeros = torch.zeros(p.d, dtype=torch.float64)
        _, self_attention = book_self_attention(X, weights[0], zeros, weights[1], zeros, weights[2], zeros)  # (N, N)
        gat = GraphAttention(p.d, p.d, heads=p.heads, generator=g).double()
        P = gat.attention(X, A)  # (heads, N, N)
        X2 = torch.randn(p.d, N, generator=g, dtype=torch.float64)
        data_dependence = max_difference(gat.attention(X2, A), P)

        # on the example and random graphs: zero off the graph, positive on it, columns sum to one
        adjacencies = [A] + _random_adjacencies(p.n_random, p.random_nodes, run.rng)
        off_graph, on_graph_min, column_gap, attention_off_min = 0.0, 1.0, 0.0, 1.0
        for B in adjacencies:
            n_b = B.shape[0]
            Z = torch.randn(p.d, n_b, generator=g, dtype=torch.float64)
            layer = GraphAttention(p.d, p.d, heads=p.heads, generator=g).double()
            Pb = layer.attention(Z, B)
            allowed = (B + torch.eye(n_b, dtype=torch.float64)) > 0
            off_graph = max(off_graph, Pb[:, ~allowed].abs().max().item() if (~allowed).any() else 0.0)
            on_graph_min = min(on_graph_min, Pb[:, allowed].min().item())
            column_gap = max(column_gap, max_difference(Pb.sum(1), torch.ones(p.heads, n_b, dtype=torch.float64)))
            if (~allowed).any():
                _, Sb = book_self_attention(Z, weights[0], zeros, weights[1], zeros, weights[2], zeros)
                attention_off_min = min(attention_off_min, Sb[~allowed].min().item())
        # with φ = 0 every score is equal: graph attention becomes a graph convolution with mean aggregation
        # over the node and its neighbours, a[β1ᵀ + Ω X (A + I) D̃⁻¹]
        flat = GraphAttention(p.d, p.d, heads=p.heads, concat=False, generator=g).double()
        flat.phi.zero_()
        flat.beta.normal_(generator=g)
        mean_conv = torch.relu(flat.beta[:, None] + (flat.omega @ X).view(p.heads, p.d, N).mean(0)
                               @ (gcn / gcn.sum(0)))
        flat_gap = _gap(flat(X, A), mean_conv)

    pyg = _pyg()
    gatconv = _gatconv_gap(pyg, adjacencies, p.d, p.d, max(p.heads, 2), g) if pyg is not None else None
    return Result(
        metrics={"node": p.node, "heads": p.heads, "n_graphs": len(adjacencies),
                 "gat_off_graph_max": off_graph, "gat_on_graph_min": on_graph_min, "gat_column_sum_gap": column_gap,
                 "self_attention_off_graph_min": attention_off_min,
                 "self_attention_off_graph_pairs": int(((gcn == 0) & (self_attention > 0)).sum()),
                 "off_graph_pairs": int((gcn == 0).sum()),
                 "gat_data_dependence": data_dependence, "flat_gat_vs_mean_gap": flat_gap, "gatconv_gap": gatconv},
        arrays={"gcn": gcn.numpy(), "self_attention": self_attention.numpy(), "gat": P[0].numpy()},
        notes=f"The weights of panels b and c are those of random, untrained parameters (D = {p.d}); panel c shows "
              f"the first of {p.heads} heads. The claims about graph attention are checked for every head on the "
              f"example graph and {p.n_random} random graphs G(N, 0.3); the comparison with GATConv uses "
              f"{max(p.heads, 2)} heads, stacked and averaged on alternate graphs."
              + ("" if pyg is not None else " torch_geometric is not installed: the comparison with GATConv was "
                                            "skipped."))


@attention_comparison.plot
def _(r):
    m, a = r.metrics, r.arrays
    fig, axes = style.subplots(1, 4, width=2.7, height=3.1)
    gcn = a["gcn"]
    off = gcn == 0
    panels = [("gcn", "a) graph convolution", "weights A + I (fixed)", style.TRUTH),
              ("self_attention", "b) dot-product attention", "Softmax[KᵀQ/√D]", style.MODEL),
              ("gat", "c) graph attention", "softmax over ne[n] ∪ {n}", style.DATA)]
    N = gcn.shape[0]
    for ax, (key, title, formula, color) in zip(axes, panels):
        W = a[key]
        faces = drawing.value_faces(W, color, vmax=float(W.max()))
        faces[W == 0] = "white"
        squares = drawing.grid(ax, None, (0, 0), faces=faces, edges="0.6", lw=0.4)
        for (i, j), sq in zip(np.ndindex(N, N), squares):
            if off[i, j]:
                sq.set_hatch("////")
                sq.set_edgecolor("0.6")
        for j in range(N):
            ax.text(j, 0.75, str(j + 1), ha="center", fontsize=6.5)
            ax.text(-0.85, -j, str(j + 1), ha="right", va="center", fontsize=6.5)
        ax.text((N - 1) / 2, -N + 0.05, formula, ha="center", va="top", fontsize=7.5)
        ax.text((N - 1) / 2, 1.4, "output node n →", ha="center", fontsize=6.5)
        drawing.frame(ax, (-1.6, N), (-N - 0.6, 2.0))
        ax.set_title(title, fontsize=9)
    ax = axes[3]
    node = m["node"]
    w = a["gat"][:, node]
    _draw_graph(ax, POS, EDGES, faces={v: style.DATA if v == node else "white" for v in POS}, edge_color="0.8")
    for v in POS:
        if w[v] > 0 and v != node:
            (x0, y0), (x1, y1) = POS[v], POS[node]
            ax.plot([x0, x1], [y0, y1], color=style.DATA, lw=1 + 10 * w[v], zorder=1.5, solid_capstyle="round")
            ax.text((x0 + x1) / 2, (y0 + y1) / 2, f"{w[v]:.2f}", fontsize=7, ha="center", va="center", zorder=5,
                    bbox=dict(fc="white", ec="none", pad=0.5))
    ax.text(*np.add(POS[node], (0, 0.3)), f"itself: {w[node]:.2f}", ha="center", va="bottom", fontsize=7)
    drawing.frame(ax, (-0.4, 3.9), (-0.8, 2.6))
    ax.set_title(f"d) attention of node {node + 1}", fontsize=9)
    return fig


@attention_comparison.checks
def _(r):
    m = r.metrics
    checks = [
        Check.equal(f"c) graph attention gives exactly zero weight to every pair that is not joined (all heads, "
                    f"{m['n_graphs']} graphs: largest such weight)", m["gat_off_graph_max"], 0.0),
        Check.greater("c) ... and a positive weight to every neighbour and to the node itself",
                      m["gat_on_graph_min"], 0.0),
        Check.less("c) each node's weights sum to one", m["gat_column_sum_gap"], EXACT),
        Check.greater(f"b) dot-product attention ignores the graph: every pair that is not joined gets a positive "
                      f"weight ({m['n_graphs']} graphs: smallest such weight)", m["self_attention_off_graph_min"], 0.0),
        Check.greater("b, c) attention weights come from the data: another input changes them (largest change)",
                      m["gat_data_dependence"], 1e-3),
        Check.less("with φ = 0 every score is equal and graph attention is the graph convolution "
                   "a[β1ᵀ + ΩX(A + I)D̃⁻¹], the mean over the node and its neighbours",
                   m["flat_gat_vs_mean_gap"], EXACT),
    ]
    claim = ("udl's graph attention equals torch_geometric's GATConv with the same weights (several heads, stacked "
             "and averaged; values and gradients, float32, relative to entries above one)")
    checks.append(Check.less(claim, m["gatconv_gap"], PYG_TOL) if m["gatconv_gap"] is not None
                  else Check.untested(claim, "torch_geometric is not installed"))
    return checks
