"""Chapter 13: graphs as matrices — A, X and E (fig. 13.3), walks and powers of A (fig. 13.4), the edge graph (fig. 13.13)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import torch
from matplotlib.patches import Rectangle

from udl import drawing, style
from udl.data.graphs import Graph, count_walks, edge_graph, from_networkx, to_networkx, walks
from udl.registry import Check, Result, figure

# The six-node, seven-edge example graph of figs. 13.3 and 13.13 (nodes 0..5, drawn 1..6) and where it is drawn.
EXAMPLE_EDGES = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 4), (3, 4), (4, 5)]
EXAMPLE_POS = {0: (0.0, 1.1), 1: (1.2, 2.1), 2: (1.2, 0.0), 3: (2.7, 2.2), 4: (2.7, 0.2), 5: (4.0, 1.2)}
# The eight-node graph of fig. 13.4 (nodes 0..7, drawn 1..8): from node 6 one move reaches 5, 7 and 8; two moves
# reach 2, 3, 4, 5 and 8, and return to 6 in three ways, as the caption describes.
WALK_EDGES = [(0, 1), (0, 3), (1, 2), (1, 7), (2, 6), (3, 4), (4, 5), (4, 7), (5, 6), (5, 7)]
WALK_POS = {0: (0.0, 1.0), 1: (1.0, 2.0), 2: (2.4, 2.3), 3: (0.6, -0.2), 4: (2.0, -0.3), 5: (3.3, 0.6),
            6: (3.7, 2.0), 7: (2.0, 1.0)}
EDGE_COLOR = style.EXTRA[3]  # blue: edge data, as the book draws it beside the orange node data
RANDOM_P = 0.35  # edge probability of the random graphs the checks also run on


def _random_graphs(n: int, max_nodes: int, rng: np.random.Generator) -> list[nx.Graph]:
    """``n`` random graphs G(N, p) with N drawn from 2 ... max_nodes (the checks' further cases)."""
    return [nx.gnp_random_graph(int(rng.integers(2, max_nodes + 1)), RANDOM_P, seed=int(rng.integers(2 ** 31)))
            for _ in range(n)]


# --------------------------------------------------------------------------- drawing helpers (no computation)
def _draw_graph(ax, pos, edges, *, faces=None, edge_color="0.35", lw=1.4, r=0.22, labels=True, zorder=3):
    """Nodes as numbered circles (1-based, as the book numbers them) joined by straight edges."""
    for m, n in edges:
        ax.plot([pos[m][0], pos[n][0]], [pos[m][1], pos[n][1]], color=edge_color, lw=lw, zorder=zorder - 2)
    for v, xy in pos.items():
        face = "white" if faces is None else faces[v]
        drawing.node(ax, xy, str(v + 1) if labels else "", r=r, face=face, fontsize=8, zorder=zorder)


def _frame_around(ax, pos, pad=0.6):
    xs, ys = zip(*pos.values())
    drawing.frame(ax, (min(xs) - pad, max(xs) + pad), (min(ys) - pad, max(ys) + pad))


def _vector(ax, values, top, color, step=0.16, vmax=None):
    """A short column vector of cells, its top cell centred at ``top``."""
    drawing.grid(ax, np.asarray(values)[:, None], top, step=step, fmt=None, lw=0.4, color=color, vmax=vmax)


def _matrix_panel(ax, M, *, color=None, binary=False, fmt=None, col_labels=None, row_labels=None, title=""):
    """A matrix as cells (entry [0, 0] at the top left) with optional labels, on an equal-aspect canvas."""
    M = np.asarray(M, dtype=float)
    rows, cols = M.shape
    faces = np.where(M > 0, "black", "white").tolist() if binary else None
    if binary:
        drawing.grid(ax, M, (0, 0), faces=faces, fmt=None, lw=0.5)
    else:
        drawing.grid(ax, M, (0, 0), fmt=fmt, lw=0.5, color=color, fontsize=6.5)
    for j, text in enumerate(col_labels or []):
        ax.text(j, 0.8, text, ha="center", va="bottom", fontsize=6.5)
    for i, text in enumerate(row_labels or []):
        ax.text(-0.8, -i, text, ha="right", va="center", fontsize=6.5)
    drawing.frame(ax, (-1.6, cols), (-rows, 1.9))
    ax.set_title(title, fontsize=9)


# --------------------------------------------------------------------------- 13.3
@figure("13.3", title="A graph as three matrices",
        caption="A graph with six nodes and seven edges, each node carrying a vector of D = 5 numbers (orange) "
                "and each edge a vector of D_E = 4 (blue). b) The adjacency matrix A has a one at (m, n) where "
                "nodes m and n are joined: it is binary and, for an undirected graph, symmetric. c) The node data "
                "X hold one column per node. d) The edge data E hold one column per edge, in a fixed order of the "
                "edges (here m < n, row by row). Built with udl.data.graphs and compared with networkx.",
        params={"tiny": dict(d=5, d_e=4, n_random=5, random_nodes=12),
                "full": dict(d=5, d_e=4, n_random=100, random_nodes=30)},
        limits={"d": (1, 16), "d_e": (1, 16), "n_random": (0, 1000), "random_nodes": (2, 60)})
def graph_matrices(p, run):
    g = run.generator(0)
    X = torch.randn(p.d, 6, generator=g)  # (D, N): a column per node
    E = torch.randn(p.d_e, len(EXAMPLE_EDGES), generator=g)  # (D_E, N_E): a column per edge
    nxg = nx.Graph()
    nxg.add_nodes_from(range(6))
    nxg.add_edges_from(EXAMPLE_EDGES)
    graph = Graph(from_networkx(nxg).A, X, E)
    reference = torch.from_numpy(nx.to_numpy_array(nxg, nodelist=range(6))).float()
    back = to_networkx(graph)
    edge_data_diff = max(float((torch.tensor(back.edges[m, n]["e"]) - E[:, j]).abs().max())
                         for j, (m, n) in enumerate(graph.edges.tolist()))
    # the same on random graphs: networkx -> A, X, E -> networkx -> A, X, E is exact, and A is networkx's
    worst = {"adjacency": 0.0, "round_trip": 0.0, "asymmetry": 0.0, "edge_count": 0}
    for other in _random_graphs(p.n_random, p.random_nodes, run.rng):
        n, m = other.number_of_nodes(), other.number_of_edges()
        for a, b in other.edges:
            other.edges[a, b]["w"] = torch.randn(p.d_e, generator=g).tolist()
        made = from_networkx(other, node_data=torch.randn(p.d, n, generator=g), edge_data="w")
        again = from_networkx(to_networkx(made), node_data="x", edge_data="e")
        worst["adjacency"] = max(worst["adjacency"], float((made.A - torch.from_numpy(
            nx.to_numpy_array(other, nodelist=range(n))).float()).abs().max()))
        worst["round_trip"] = max(worst["round_trip"], *(float((getattr(again, k) - getattr(made, k)).abs().max())
                                                         if getattr(made, k).numel() else 0.0 for k in "AXE"))
        worst["asymmetry"] = max(worst["asymmetry"], float((made.A - made.A.T).abs().max()))
        worst["edge_count"] = max(worst["edge_count"], abs(int(made.A.sum()) - 2 * m))
    A = graph.A
    return Result(
        metrics={"n_nodes": graph.n_nodes, "n_edges": graph.n_edges, "d": p.d, "d_e": p.d_e,
                 "A_shape": list(A.shape), "X_shape": list(graph.X.shape), "E_shape": list(graph.E.shape),
                 "A_values": sorted(set(A.unique().tolist())), "A_asymmetry": float((A - A.T).abs().max()),
                 "A_diagonal": float(A.diagonal().abs().sum()), "A_sum": float(A.sum()),
                 "A_vs_networkx": float((A - reference).abs().max()), "edge_data_vs_networkx": edge_data_diff,
                 "edges": graph.edges.tolist(), "n_random": p.n_random,
                 "random_A_vs_networkx": worst["adjacency"], "random_round_trip": worst["round_trip"],
                 "random_asymmetry": worst["asymmetry"], "random_edge_count_error": worst["edge_count"]},
        arrays={"A": A.numpy(), "X": X.numpy(), "E": E.numpy()},
        notes="The node and edge data are random numbers (seeded); only their places in X and E matter here.")


@graph_matrices.plot
def _(r):
    a, m = r.arrays, r.metrics
    edges = [tuple(e) for e in m["edges"]]
    fig, axes = style.subplots(1, 4, width=2.6, height=2.7, gridspec_kw={"width_ratios": [1.5, 1, 1, 1.1]})
    ax = axes[0]
    _draw_graph(ax, EXAMPLE_POS, edges, r=0.2)
    vmax_x, vmax_e = float(np.abs(a["X"]).max()), float(np.abs(a["E"]).max())
    centre = np.mean(list(EXAMPLE_POS.values()), axis=0)
    for v, (x, y) in EXAMPLE_POS.items():  # node vectors beside their nodes, on the outer side
        side = 1.0 if x >= centre[0] else -1.0
        _vector(ax, a["X"][:, v], (x + 0.36 * side, y + 0.32), style.DATA, vmax=vmax_x)
    for j, (u, v) in enumerate(edges):  # edge vectors beside their edges' midpoints, away from the centre
        (x0, y0), (x1, y1) = EXAMPLE_POS[u], EXAMPLE_POS[v]
        middle = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        normal = np.array([y0 - y1, x1 - x0]) / np.hypot(x1 - x0, y1 - y0)
        normal *= 1.0 if normal @ (middle - centre) >= 0 else -1.0
        at = middle + 0.2 * normal
        _vector(ax, a["E"][:, j], (at[0], at[1] + 0.2), EDGE_COLOR, step=0.13, vmax=vmax_e)
    _frame_around(ax, EXAMPLE_POS, pad=0.55)
    ax.set_title("graph", fontsize=9)
    n, n_e = a["A"].shape[0], a["E"].shape[1]
    _matrix_panel(axes[1], a["A"], binary=True, col_labels=[str(i + 1) for i in range(n)],
                  row_labels=[str(i + 1) for i in range(n)], title=f"A ({n}×{n})")
    _matrix_panel(axes[2], a["X"], color=style.DATA, col_labels=[str(i + 1) for i in range(n)],
                  title=f"X ({m['d']}×{n})")
    _matrix_panel(axes[3], a["E"], color=EDGE_COLOR, col_labels=[f"{u + 1}–{v + 1}" for u, v in edges],
                  title=f"E ({m['d_e']}×{n_e})")
    style.panel_labels(axes)
    return fig


@graph_matrices.checks
def _(r):
    m = r.metrics
    n, n_e = m["n_nodes"], m["n_edges"]
    checks = [Check.equal("the example has six nodes and seven edges", [n, n_e], [6, 7]),
              Check.equal("A is N×N", m["A_shape"], [n, n]),
              Check.equal("X is D×N: a column per node", m["X_shape"], [m["d"], n]),
              Check.equal("E is D_E×N_E: a column per edge", m["E_shape"], [m["d_e"], n_e]),
              Check.holds("A is binary", set(m["A_values"]) <= {0.0, 1.0}, m["A_values"], "entries in {0, 1}"),
              Check.close("A is symmetric (undirected)", m["A_asymmetry"], 0.0, 0.0),
              Check.close("A has no self-loops (zero diagonal)", m["A_diagonal"], 0.0, 0.0),
              Check.close("A's entries add up to twice the edges", m["A_sum"], 2 * n_e, 0.0),
              Check.close("A equals networkx's adjacency matrix", m["A_vs_networkx"], 0.0, 0.0),
              Check.close("column j of E is edge j's data in networkx", m["edge_data_vs_networkx"], 0.0, 0.0)]
    claim = "on random graphs: A equals networkx's, is symmetric, counts the edges; the round trip is exact"
    if m["n_random"] == 0:
        return checks + [Check.untested(claim, "needs n_random >= 1")]
    worst = max(m["random_A_vs_networkx"], m["random_round_trip"], m["random_asymmetry"],
                m["random_edge_count_error"])
    return checks + [Check.close(claim, worst, 0.0, 0.0)]


# --------------------------------------------------------------------------- 13.4
@figure("13.4", title="Powers of the adjacency matrix count walks",
        caption="a) A graph with eight nodes; one node is highlighted. b) Entry (m, n) of A counts the walks of "
                "one step between nodes m and n, and c) entry (m, n) of A² the walks of two steps. d) The "
                "highlighted node as a one-hot vector e. e) Ae counts the one-step walks from it: its neighbours. "
                "f) A²e counts the two-step walks from it; the walks that come back are as many as its neighbours. "
                "Every count is compared with walks listed one by one (depth-first), here and on random graphs, "
                "for powers up to max_k.",
        params={"tiny": dict(node=6, max_k=3, n_random=5, random_nodes=8),
                "full": dict(node=6, max_k=4, n_random=60, random_nodes=10)},
        limits={"node": (1, 8), "max_k": (1, 5), "n_random": (0, 500), "random_nodes": (2, 10)})
def walk_counts(p, run):
    A = _adjacency(8, WALK_EDGES)
    powers = {k: torch.linalg.matrix_power(A, k) for k in range(1, p.max_k + 1)}  # A^k, (N, N)
    enumerated = {k: count_walks(A, k) for k in powers}
    n = p.node - 1
    e = torch.zeros(8)
    e[n] = 1.0  # the one-hot vector of the highlighted node
    two_step = walks(A, 2, n)
    worst = max(float((powers[k] - enumerated[k]).abs().max()) for k in powers)
    worst_random = 0.0
    for other in _random_graphs(p.n_random, p.random_nodes, run.rng):
        B = from_networkx(other).A
        for k in range(1, p.max_k + 1):
            worst_random = max(worst_random, float((torch.linalg.matrix_power(B, k) - count_walks(B, k)).abs().max()))
    return Result(
        metrics={"node": p.node, "max_k": p.max_k, "n_random": p.n_random,
                 "power_vs_enumeration": worst, "random_power_vs_enumeration": worst_random,
                 "one_step": [i + 1 for i in (A @ e).nonzero().flatten().tolist()],
                 "neighbours": [i + 1 for i in A[n].nonzero().flatten().tolist()],
                 "two_step_reached": sorted({w[-1] + 1 for w in two_step if w[-1] != n}),
                 "two_step_returns": int((powers[2] @ e)[n]) if 2 in powers else int((A @ A @ e)[n]),
                 "two_step_walks": [[v + 1 for v in w] for w in two_step],
                 "degree": int(A[n].sum()),
                 "Ae_equals_column": float((A @ e - A[:, n]).abs().max())},
        arrays={"A": A.numpy(), "A2": (A @ A).numpy(), "e": e.numpy(), "Ae": (A @ e).numpy(),
                "A2e": (A @ A @ e).numpy()})


def _adjacency(n: int, edges) -> torch.Tensor:
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    return from_networkx(g).A


@walk_counts.plot
def _(r):
    a, m = r.arrays, r.metrics
    n = m["node"] - 1
    fig, panels = style.subplots(2, 3, width=2.5, height=2.5)
    axes = list(panels.flat)
    faces = {v: style.DATA if v == n else "white" for v in WALK_POS}
    _draw_graph(axes[0], WALK_POS, WALK_EDGES, faces=faces)
    _frame_around(axes[0], WALK_POS, pad=0.5)
    axes[0].set_title("graph", fontsize=9)
    labels = [str(i + 1) for i in range(8)]
    _matrix_panel(axes[1], a["A"], color="0.45", fmt="{:g}", col_labels=labels, row_labels=labels, title="A")
    _matrix_panel(axes[2], a["A2"], color="0.45", fmt="{:g}", col_labels=labels, row_labels=labels, title="A²")
    for ax in axes[1:3]:  # the highlighted node's column: what Ae and A²e pick out
        ax.add_patch(Rectangle((n - 0.5, -7.5), 1, 8, fill=False, edgecolor=style.DATA, lw=2.0, zorder=5))
    for ax, key, title in zip(axes[3:], ("e", "Ae", "A2e"), (f"e (node {n + 1})", "Ae", "A²e")):
        column = a[key][:, None]
        drawing.grid(ax, column, (0, 0), fmt="{:g}", lw=0.5, color=style.MODEL if key != "e" else style.DATA,
                     vmax=max(1.0, float(a["A2e"].max())), fontsize=7)
        for i in range(8):
            ax.text(-0.8, -i, labels[i], ha="right", va="center", fontsize=6.5)
        drawing.frame(ax, (-4.5, 5.5), (-8, 1.2))
        ax.set_title(title, fontsize=9)
    style.panel_labels(panels)
    return fig


@walk_counts.checks
def _(r):
    m = r.metrics
    checks = [Check.close(f"(A^k)[m, n] equals the k-step walks from m to n counted one by one, k = 1..{m['max_k']}",
                          m["power_vs_enumeration"], 0.0, 0.0),
              Check.equal("Ae is the highlighted node's column of A: its neighbours", m["one_step"], m["neighbours"]),
              Check.equal("two-step walks that return to the node: as many as its neighbours",
                          m["two_step_returns"], m["degree"])]
    if m["n_random"] == 0:
        checks.append(Check.untested("the same on random graphs", "needs n_random >= 1"))
    else:
        checks.append(Check.close(f"on {m['n_random']} random graphs, A^k equals the enumerated walks",
                                  m["random_power_vs_enumeration"], 0.0, 0.0))
    claim = "from node 6: one move reaches 5, 7, 8; two moves reach 2, 3, 4, 5, 8 and return in 3 ways (caption)"
    if m["node"] != 6:
        checks.append(Check.untested(claim, "the caption's example is node 6"))
    else:
        checks.append(Check.equal(claim, [m["one_step"], m["two_step_reached"], m["two_step_returns"]],
                                  [[5, 7, 8], [2, 3, 4, 5, 8], 3]))
    return checks


# --------------------------------------------------------------------------- 13.13
@figure("13.13", title="The edge graph",
        caption="a) A graph with six nodes and seven edges. b) Each edge becomes a node of a new graph (cyan "
                "circles). c) Two new nodes are joined when their edges meet at a node of the original graph: "
                "the edge graph (line graph). udl.data.graphs.edge_graph builds it from the incidence matrix B "
                "as BᵀB − 2I and is compared with networkx.line_graph, here and on random graphs.",
        params={"tiny": dict(n_random=5, random_nodes=12), "full": dict(n_random=200, random_nodes=30)},
        limits={"n_random": (0, 2000), "random_nodes": (2, 60)})
def edge_graphs(p, run):
    g = nx.Graph()
    g.add_nodes_from(range(6))
    g.add_edges_from(EXAMPLE_EDGES)
    graph = from_networkx(g, node_data=torch.arange(6.0)[None])  # X = node numbers: E' says which node is shared
    line = edge_graph(graph)
    order = [tuple(e) for e in graph.edges.tolist()]
    diff = _versus_networkx(g, graph, line)
    degrees = [d for _, d in g.degree]
    shared_ok = all(int(line.E[0, j]) in set(order[a]) & set(order[b]) for j, (a, b) in
                    enumerate(line.edges.tolist()))
    worst = 0.0
    for other in _random_graphs(p.n_random, p.random_nodes, run.rng):
        made = from_networkx(other)
        worst = max(worst, _versus_networkx(other, made, edge_graph(made)))
    return Result(
        metrics={"n_nodes": graph.n_nodes, "n_edges": graph.n_edges, "line_nodes": line.n_nodes,
                 "line_edges": line.n_edges, "pairs_of_edges_at_a_node": sum(d * (d - 1) // 2 for d in degrees),
                 "vs_networkx": diff, "isomorphic": bool(nx.is_isomorphic(to_networkx(line), nx.line_graph(g))),
                 "shared_node_data": shared_ok, "random_vs_networkx": worst, "n_random": p.n_random,
                 "edges": [list(e) for e in order], "line_graph_edges": line.edges.tolist()},
        arrays={"A_line": line.A.numpy()})


def _versus_networkx(g: nx.Graph, graph: Graph, line: Graph) -> float:
    """The largest difference between udl's edge graph and networkx.line_graph with node j = edge j of ``graph``."""
    reference = nx.line_graph(g)  # its nodes are the edges (u, v) in networkx's own orientation
    nodelist = [e if e in reference else e[::-1] for e in map(tuple, graph.edges.tolist())]
    if not nodelist:  # no edges: both edge graphs are empty
        return float(line.n_nodes + reference.number_of_nodes())
    expected = torch.from_numpy(nx.to_numpy_array(reference, nodelist=nodelist)).float()
    return float((line.A - expected).abs().max())


@edge_graphs.plot
def _(r):
    m = r.metrics
    edges = [tuple(e) for e in m["edges"]]
    mid = {j: ((EXAMPLE_POS[u][0] + EXAMPLE_POS[v][0]) / 2, (EXAMPLE_POS[u][1] + EXAMPLE_POS[v][1]) / 2)
           for j, (u, v) in enumerate(edges)}
    fig, axes = style.subplots(1, 3, width=2.9, height=2.4)
    for i, ax in enumerate(axes):
        faint = i == 2
        _draw_graph(ax, EXAMPLE_POS, edges, edge_color="0.8" if faint else "0.35",
                    faces={v: drawing.light("black", 0.08) if faint else "white" for v in EXAMPLE_POS},
                    lw=1.0 if faint else 1.4, r=0.17 if faint else 0.22)
        if i >= 1:
            if i == 2:
                for a, b in m["line_graph_edges"]:
                    ax.plot([mid[a][0], mid[b][0]], [mid[a][1], mid[b][1]], color=style.MODEL, lw=1.6, zorder=4)
            for j, xy in mid.items():
                drawing.node(ax, xy, f"{edges[j][0] + 1}{edges[j][1] + 1}", r=0.2, face=style.MODEL,
                             edge="black", fontsize=6.5, zorder=5)
        _frame_around(ax, EXAMPLE_POS, pad=0.45)
    axes[0].set_title("graph", fontsize=9)
    axes[1].set_title("a node per edge", fontsize=9)
    axes[2].set_title(f"edge graph: {m['line_nodes']} nodes, {m['line_edges']} edges", fontsize=9)
    style.panel_labels(axes)
    return fig


@edge_graphs.checks
def _(r):
    m = r.metrics
    checks = [Check.equal("one node per edge", m["line_nodes"], m["n_edges"]),
              Check.equal("its edges: pairs of edges meeting at a node, Σ_n deg(n)(deg(n) − 1)/2",
                          m["line_edges"], m["pairs_of_edges_at_a_node"]),
              Check.close("its adjacency equals networkx.line_graph's (node j = edge j)", m["vs_networkx"], 0.0, 0.0),
              Check.holds("and the two graphs are isomorphic", m["isomorphic"], m["isomorphic"]),
              Check.holds("each new edge carries the data of the node its two edges share", m["shared_node_data"],
                          m["shared_node_data"])]
    if m["n_random"] == 0:
        return checks + [Check.untested("the same on random graphs", "needs n_random >= 1")]
    return checks + [Check.close(f"on {m['n_random']} random graphs it equals networkx.line_graph",
                                 m["random_vs_networkx"], 0.0, 0.0)]
