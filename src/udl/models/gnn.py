"""Graph neural networks for the three tasks of fig. 13.6: graph classification, node classification, edge prediction.

A graph network (UDL §13.3-13.4) takes a graph's adjacency A ``(N, N)`` and node data
X ``(D, N)`` (one column per node, as in the book) and passes the node embeddings through
K graph layers, each mixing every node with its neighbours (:mod:`udl.nn.graph`)::

    H_0 = X,    H_k = layer_k[H_{k-1}, A]    k = 1..K                  (the body, eq. 13.11)

The last embeddings H_K ``(D_h, N)`` carry each node and its K-hop neighbourhood. The
three heads of fig. 13.6 read them differently:

- **graph classification** (fig. 13.6a): pool the columns into one vector per graph
  (:func:`~udl.nn.graph.readout`, mean by default) and map it to class logits,
  ``logits = β_K + Ω_K · mean_n h_n`` (the softmax gives the class probabilities);
- **node classification** (fig. 13.6b): the same linear map for every node,
  ``logits_n = β_K + Ω_K h_n``;
- **edge prediction** (fig. 13.6c): a linear map to embeddings e_n = β_K + Ω_K h_n, then
  the dot product e_mᵀ e_n of the two ends of a pair (:func:`~udl.nn.graph.edge_score`), a
  logit whose sigmoid is the probability that the edge is present.

A batch of graphs is one graph with a block-diagonal A (§13.5.1, :func:`udl.data.graphs.batch_graphs`);
its ``node_graph`` tells the readout which nodes belong to which graph. Outputs are batch-first,
as PyTorch's losses want them: ``(n_graphs, K)``, ``(N, K)`` and ``(M,)``.

:class:`StructureBlind` runs any of these models on the graph with its edges removed
(A = 0): a baseline that sees the node data and nothing of the structure. Without edges
every layer of :mod:`udl.nn.graph` maps each node on its own (the neighbours' summary is
zero; Kipf's normalisation and attention are left with the node itself), so the blind
node classifier is an MLP of each node's own data, and the blind graph classifier pools
per-node MLP features (a "deep set").

Example::

    >>> from udl.data.graphs import karate_club
    >>> model = NodeClassifier(GNNConfig(d_in=34, n_classes=2), generator=0)
    >>> model(karate_club()).shape
    torch.Size([34, 2])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from udl.data.graphs import Graph, _unchecked
from udl.nn.graph import (ACTIVATIONS, AGGREGATIONS, COMBINES, GraphAttention, GraphConv, GraphSequential, edge_score,
                          readout)
from udl.nn.init import initialised_from
from udl.validate import as_generator, check_choice, check_config, check_instance, check_int, check_tensor

__all__ = ["GNNConfig", "GraphNetwork", "GraphClassifier", "NodeClassifier", "EdgePredictor", "StructureBlind",
           "without_edges"]

LAYERS = ("conv", "attention")
READOUTS = ("mean", "max", "sum")


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class GNNConfig:
    """The shape of a graph network and its head; the defaults suit Zachary's karate club.

    Presets: :meth:`karate` (one-hot node identities, 2 Kipf layers), :meth:`tiny` (for tests).

    Example::

        >>> GNNConfig.tiny().layer_sizes()
        [(3, 8), (8, 8)]
    """

    d_in: int = 34  # D, the node data per node (rows of X)
    d_hidden: int = 16  # D_h, the size of the node embeddings after each graph layer
    n_layers: int = 2  # K, graph layers (a node sees its K-hop neighbourhood)
    n_classes: int = 2  # outputs of the classification heads
    layer: str = "conv"  # "conv" (GraphConv, §13.4/13.8) or "attention" (GraphAttention, §13.8.6)
    aggregation: str = "kipf"  # GraphConv's aggregation: "sum" (the simple layer), "mean", "symmetric", "max", "kipf"
    combine: str = "add"  # GraphConv's way to add the node itself: "add", "diagonal", "separate", "residual"
    heads: int = 1  # GraphAttention's heads, concatenated: each has d_hidden / heads outputs
    activation: str = "relu"  # a[•] of every graph layer: "relu", or "identity" for a linear graph network
    readout: str = "mean"  # the graph classifier's pooling: "mean", "max" or "sum"
    d_embed: int = 16  # the edge predictor's node embeddings e_n, whose dot products score pairs

    def __post_init__(self):
        owner = "GNNConfig"
        for name in ("d_in", "d_hidden", "n_layers", "heads", "d_embed"):
            check_int(getattr(self, name), name, owner)
        check_int(self.n_classes, "n_classes", owner, minimum=2)
        check_choice(self.layer, "layer", owner, LAYERS)
        check_choice(self.aggregation, "aggregation", owner, AGGREGATIONS)
        check_choice(self.combine, "combine", owner, COMBINES)
        check_choice(self.readout, "readout", owner, READOUTS)
        check_choice(self.activation, "activation", owner, ACTIVATIONS)
        if self.aggregation == "kipf" and self.combine != "add":
            raise ValueError(f"The 'combine' parameter of {owner} must be 'add' with aggregation='kipf' (its "
                             f"normalisation already includes the node). Got {self.combine!r} instead.")
        if self.d_hidden % self.heads:
            raise ValueError(f"The 'heads' parameter of {owner} must divide d_hidden = {self.d_hidden}. "
                             f"Got {self.heads} instead.")

    @classmethod
    def karate(cls, **changes) -> GNNConfig:
        """Zachary's karate club: one-hot identities (D = 34), two Kipf layers of 16, two factions."""
        return cls(**changes)

    @classmethod
    def tiny(cls, **changes) -> GNNConfig:
        """For tests: D = 3, two sum-aggregation layers of 8, three classes, embeddings of 4."""
        return cls(**{**dict(d_in=3, d_hidden=8, n_layers=2, n_classes=3, aggregation="sum", d_embed=4),
                      **changes})

    def layer_sizes(self) -> list[tuple[int, int]]:
        """``(rows in, rows out)`` of each graph layer (a residual layer stacks its input under its output)."""
        sizes, d = [], self.d_in
        for _ in range(self.n_layers):
            out = self.d_hidden + d if self.layer == "conv" and self.combine == "residual" else self.d_hidden
            sizes.append((d, out))
            d = out
        return sizes

    def parameter_count(self, head: str = "node") -> int:
        """The weights of a network with this config and a ``"graph"``, ``"node"`` or ``"edge"`` head (closed form).

        A GraphConv layer D_in -> D_h holds Ω and β, D_h·D_in + D_h (Ψ adds D_h·D_in, diagonal
        enhancement one ε); a GraphAttention layer with H heads of D_h/H holds Ω (D_h·D_in),
        φ (2·D_h) and β (D_h). The head maps D_K to n_classes (graph, node) or d_embed (edge): (D_K + 1)·outputs.
        """
        check_choice(head, "head", "GNNConfig.parameter_count", ("graph", "node", "edge"))
        total = 0
        for d_in, _ in self.layer_sizes():
            h = self.d_hidden
            if self.layer == "attention":
                total += h * d_in + 2 * h + h
            else:
                total += h * d_in + h + (h * d_in if self.combine == "separate" else 0) + (self.combine == "diagonal")
        outputs = self.d_embed if head == "edge" else self.n_classes
        return total + (self.layer_sizes()[-1][1] + 1) * outputs

    def to_dict(self) -> dict:
        return asdict(self)


def _config(config, owner: str) -> GNNConfig:
    return check_config(config, "config", owner, GNNConfig, ("karate", "tiny"),
                        lambda name: getattr(GNNConfig, name)())


def _check_graph(graph, owner: str) -> Graph:
    return check_instance(graph, "graph", owner, Graph)


# --------------------------------------------------------------------------- the body
class GraphNetwork(nn.Module):
    """The body of fig. 13.6: K graph layers, H_k = layer_k[H_{k-1}, A], each with its activation (ReLU by default).

    Args:
        config: a :class:`GNNConfig` (or the name of a preset).
        generator: the initial weights' randomness (keyword-only), a ``torch.Generator`` or
            an int seed (Glorot's uniform distribution for Ω, β = 0; see :mod:`udl.nn.graph`).
            Default: torch's global generator.

    Shape:
        ``X``: ``(D, N)``, ``A``: ``(N, N)`` -> ``(D_K, N)``, D_K = :attr:`output_size`.
    """

    def __init__(self, config: GNNConfig | str = "karate", *, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = type(self).__name__
        self.config = config = _config(config, owner)
        generator = as_generator(generator, owner)
        with initialised_from(self, generator):
            self.layers = GraphSequential([
                GraphAttention(d_in, config.d_hidden // config.heads, heads=config.heads, activation=config.activation)
                if config.layer == "attention" else
                GraphConv(d_in, config.d_hidden, aggregation=config.aggregation, combine=config.combine,
                          activation=config.activation)
                for d_in, _ in config.layer_sizes()])

    @property
    def output_size(self) -> int:
        """D_K, the rows of the last embeddings."""
        return self.config.layer_sizes()[-1][1]

    def forward(self, X: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        return self.layers(X, A)  # H_0 = X, H_k = a[...]: (D, N) -> (D_K, N)


class _Headed(nn.Module):
    """A :class:`GraphNetwork` and one linear map Ω_K, β_K after it (``head``), as every task of fig. 13.6 has."""

    def __init__(self, config, generator, d_head: int | None):
        super().__init__()
        owner = type(self).__name__
        self.config = config = _config(config, owner)
        generator = as_generator(generator, owner)
        with initialised_from(self, generator):
            self.body = GraphNetwork(config)
            self.head = nn.Linear(self.body.output_size, config.n_classes if d_head is None else d_head)

    def embed(self, graph: Graph) -> torch.Tensor:
        """H_K, the last graph layer's node embeddings ``(D_K, N)``."""
        _check_graph(graph, type(self).__name__)
        return self.body(graph.X, graph.A)


class GraphClassifier(_Headed):
    """Graph classification (fig. 13.6a): K graph layers, a readout over each graph's nodes, a linear map.

    ``logits = β_K + Ω_K · readout[H_K]``, one row per graph; the softmax of a row is
    that graph's class probabilities.

    Args:
        config: a :class:`GNNConfig` (``n_classes`` outputs, ``readout`` pooling) or a preset's name.
        generator: the initial weights' randomness (keyword-only): the graph layers as
            :class:`GraphNetwork`, the linear map torch's default. Default: torch's global generator.

    Shape:
        ``graph`` with N nodes in G graphs (a batch, or one graph: G = 1) -> ``(G, n_classes)``.
    """

    def __init__(self, config: GNNConfig | str = "karate", *, generator: torch.Generator | int | None = None):
        super().__init__(config, generator, None)

    def forward(self, graph: Graph) -> torch.Tensor:
        H = self.embed(graph)  # (D_K, N)
        node_graph = graph.node_graph
        if node_graph is None:  # a single graph
            node_graph = torch.zeros(graph.n_nodes, dtype=torch.long, device=H.device)
        pooled = readout(H, node_graph, graph.n_graphs, self.config.readout)  # (D_K, G)
        return self.head(pooled.T)  # β_K + Ω_K · pooled: (G, K)


class NodeClassifier(_Headed):
    """Node classification (fig. 13.6b): K graph layers, then the same linear map for every node.

    ``logits_n = β_K + Ω_K h_n``: row n holds node n's class logits.

    Args:
        config: a :class:`GNNConfig` (``n_classes`` outputs) or a preset's name.
        generator: the initial weights' randomness (keyword-only). Default: torch's global generator.

    Shape:
        ``graph`` with N nodes -> ``(N, n_classes)``.
    """

    def __init__(self, config: GNNConfig | str = "karate", *, generator: torch.Generator | int | None = None):
        super().__init__(config, generator, None)

    def forward(self, graph: Graph) -> torch.Tensor:
        return self.head(self.embed(graph).T)  # (N, D_K) -> (N, K)


class EdgePredictor(_Headed):
    """Edge prediction (fig. 13.6c): node embeddings e_n = β_K + Ω_K h_n, and the dot product e_mᵀ e_n per pair.

    The score of a pair (m, n) is a logit: sigmoid(e_mᵀ e_n) is the predicted probability
    that m and n are joined. It is symmetric in m and n.

    Args:
        config: a :class:`GNNConfig` (``d_embed`` the size of e_n) or a preset's name.
        generator: the initial weights' randomness (keyword-only). Default: torch's global generator.

    Shape:
        ``graph`` with N nodes, ``pairs`` ``(M, 2)`` node indices -> ``(M,)`` logits.
    """

    def __init__(self, config: GNNConfig | str = "karate", *, generator: torch.Generator | int | None = None):
        config = _config(config, type(self).__name__)
        super().__init__(config, generator, config.d_embed)

    def node_embeddings(self, graph: Graph) -> torch.Tensor:
        """E = β_K 1ᵀ + Ω_K H_K, the embeddings whose dot products score the pairs: ``(d_embed, N)``."""
        return self.head(self.embed(graph).T).T  # (d_embed, N)

    def forward(self, graph: Graph, pairs: torch.Tensor) -> torch.Tensor:
        if not (isinstance(pairs, torch.Tensor) and pairs.dim() == 2 and pairs.shape[1] == 2):
            check_tensor(pairs, "pairs", type(self).__name__, shape=("M", 2), dtype="int")
        return edge_score(self.node_embeddings(graph), pairs)  # e_mᵀ e_n: (M,)


# --------------------------------------------------------------------------- the structure-blind baseline
def without_edges(graph: Graph) -> Graph:
    """The same nodes and node data with no edges: A = 0 (and no edge data).

    Example::

        >>> from udl.data.graphs import karate_club
        >>> without_edges(karate_club()).n_edges
        0
    """
    _check_graph(graph, "without_edges")
    return _with_adjacency(graph, torch.zeros_like(graph.A))


def _with_adjacency(graph: Graph, A: torch.Tensor) -> Graph:
    """``graph`` with the adjacency ``A`` of a subgraph (some edges removed) and no edge data.

    Built without Graph's O(N²) checks, which a subgraph of a valid graph passes anyway
    (binary, symmetric, no self-loops): this runs at every training step.
    """
    return _unchecked(A=A, X=graph.X, E=None, y=graph.y, node_graph=graph.node_graph)


class StructureBlind(nn.Module):
    """A graph model that is shown each graph without its edges: a baseline that sees only the node data.

    ``StructureBlind(model)(graph, ...) = model(without_edges(graph), ...)``. Trained by the
    same recipe, it measures what the node data alone can tell: a blind
    :class:`NodeClassifier` is an MLP of each node's own data, and a blind
    :class:`GraphClassifier` pools per-node MLP features.

    Args:
        model: a :class:`GraphClassifier`, :class:`NodeClassifier` or :class:`EdgePredictor`.

    Example::

        >>> blind = StructureBlind(NodeClassifier("tiny", generator=0))
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = check_instance(model, "model", "StructureBlind", (GraphClassifier, NodeClassifier, EdgePredictor))

    def forward(self, graph: Graph, *rest) -> torch.Tensor:
        return self.model(without_edges(_check_graph(graph, "StructureBlind")), *rest)
