"""Graph neural network layers, written in the book's matrix form (UDL §13.4, §13.8).

A graph with N nodes is its adjacency A ``(N, N)`` and its node embeddings H ``(D, N)``,
**one column per node**, as in the book (column n is h_n). A is a dense float tensor:
A[m, n] = 1 when an edge runs from node m to node n (symmetric for an undirected graph),
with a zero diagonal (no self-loops). Right-multiplying by A sums neighbours: column n of
H A is Σ_{m ∈ ne[n]} h_m. A batch of graphs is one big graph whose A is block-diagonal
(§13.5.1), so every layer here takes a batch as it takes one graph.

**The simple layer** (§13.4, fig. 13.7) aggregates each node's neighbours, adds the node
itself, and applies one linear map Ω, one bias β and an activation a[•], shared by all nodes::

    H' = a[β 1ᵀ + Ω H (A + I)]                                                   (G.1)

**Variants** (§13.8). ``aggregation`` says how the neighbours are summarised::

    "sum"        Σ_{m ∈ ne[n]} h_m                     = (H A)_n                 (G.1)
    "mean"       Σ_{m ∈ ne[n]} h_m / |ne[n]|           = (H A D⁻¹)_n             §13.8.3
    "symmetric"  Σ_{m ∈ ne[n]} h_m / √(|ne[n]| |ne[m]|) = (H D^-½ A D^-½)_n       §13.8.4, the book's form
    "max"        elementwise max_{m ∈ ne[n]} h_m                                  §13.8.5

(D = diag of the degrees; a node without neighbours aggregates to zero), and ``combine``
how the node itself joins them (§13.8.1-13.8.2)::

    "add"        a[β 1ᵀ + Ω (agg + H)]                 the simple layer
    "diagonal"   a[β 1ᵀ + Ω (agg + (1 + ε) H)]         diagonal enhancement, ε learned (starts at 0)
    "separate"   a[β 1ᵀ + Ω agg + Ψ H]                 the node gets its own linear map Ψ
    "residual"   [a[β 1ᵀ + Ω agg]; H]                  the input is stacked under the output: D_out + D_in rows

``aggregation="kipf"`` is Kipf & Welling's (2017) normalisation as the paper and PyTorch
Geometric's ``GCNConv`` compute it: the self-loop is added *before* normalising::

    H' = a[β 1ᵀ + Ω H D̃^-½ (A + I) D̃^-½],   D̃ = diag(degrees + 1)               (G.2)

The book writes Kipf normalisation as ``"symmetric"`` with ``combine="add"``, that is
Ω H (D^-½ A D^-½ + I): there the node itself has weight 1, in (G.2) weight 1 / (|ne[n]| + 1).
The two differ; (G.2) with ``activation="identity"`` is the one that equals ``GCNConv``
(tested, values and gradients).

**Graph attention** (§13.8.6, fig. 13.12c; Veličković et al. 2018) computes the weights of
the sum from the data, but only over the node and its neighbours::

    H' = Ω H                                    transformed embeddings h'_n
    s_mn = LeakyReLU[φᵀ [h'_m; h'_n]]           a score for every pair
    P[:, n] = softmax_m(s_mn) over m ∈ ne[n] ∪ {n}, zero elsewhere
    H'' = a[β 1ᵀ + H' P]                                                           (G.3)

With several heads each has its own Ω and φ; their outputs are stacked (``concat``) or
averaged. With ``activation="identity"`` it equals PyTorch Geometric's ``GATConv``.

**Heads** (§13.3.1, fig. 13.6): :func:`readout` pools a graph's node embeddings into one
vector (mean, max or sum), :func:`edge_score` takes the dot product h_mᵀ h_n of two nodes'
embeddings (a logit: its sigmoid is the probability of an edge).

Weights Ω, Ψ and φ are drawn from Glorot's uniform distribution (PyTorch Geometric's
rule), β and ε start at zero, all from the ``generator=``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from udl.nn.init import initialised_from, uniform_
from udl.validate import (as_generator, check_bool, check_choice, check_float, check_input, check_instance, check_int,
                          check_sequence, check_tensor)

__all__ = ["GraphConv", "GraphAttention", "GraphSequential", "propagation_matrix", "readout", "edge_score"]

AGGREGATIONS = ("sum", "mean", "symmetric", "max", "kipf")
COMBINES = ("add", "diagonal", "separate", "residual")
ACTIVATIONS = ("relu", "identity")


def _glorot_(t: torch.Tensor | None, fan_in: int, fan_out: int, generator: torch.Generator | None) -> None:
    """U(-b, b) with b = √(6 / (fan_in + fan_out)), drawn in float64 so a seed gives the same values on any dtype."""
    uniform_([t], math.sqrt(6.0 / (fan_in + fan_out)), generator)


def _activate(z: torch.Tensor, activation: str) -> torch.Tensor:
    return torch.relu(z) if activation == "relu" else z


def _inverse_power(degree: torch.Tensor, power: float) -> torch.Tensor:
    """degree^power for degree > 0, and 0 for an isolated node (its row and column of A are zero anyway)."""
    safe = torch.where(degree > 0, degree, torch.ones_like(degree))
    return torch.where(degree > 0, safe.pow(power), torch.zeros_like(degree))


def _neighbour_matrix(A: torch.Tensor, aggregation: str) -> torch.Tensor:
    """The (N, N) matrix M with agg = H M for the linear aggregations ("kipf" includes the node itself)."""
    if aggregation == "sum":
        return A
    if aggregation == "kipf":
        A = A + torch.eye(A.shape[0], dtype=A.dtype, device=A.device)  # Ã = A + I
    degree = A.sum(0)  # (N,): column sums, the in-degrees (d̃ = d + 1 for Ã)
    if aggregation == "mean":
        return A * _inverse_power(degree, -1.0)  # A D⁻¹: column n divided by |ne[n]|
    d = _inverse_power(degree, -0.5)
    return d[:, None] * A * d  # D^-½ A D^-½  (or D̃^-½ Ã D̃^-½)


def _max_neighbours(H: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """Elementwise max over each node's neighbours (§13.8.5): (D, N); zero for a node without neighbours."""
    m, n = A.nonzero(as_tuple=True)  # the edges m -> n
    out = H.new_zeros(H.shape)
    return out.scatter_reduce(1, n.expand(H.shape[0], -1), H[:, m], "amax", include_self=False)  # (D, N)


def propagation_matrix(A: torch.Tensor, aggregation: str = "sum") -> torch.Tensor:
    """The fixed weights with which a graph convolution mixes nodes: H' = a[β 1ᵀ + Ω H M].

    The matrix of fig. 13.12a: column n holds the weight of every node in node n's sum.
    For the simple layer M = A + I (eq. G.1); ``"mean"``: A D⁻¹ + I; ``"symmetric"`` (the
    book's Kipf normalisation): D^-½ A D^-½ + I; ``"kipf"`` (GCNConv's): D̃^-½ (A + I) D̃^-½.
    Max aggregation is not a matrix product and is refused.

    Args:
        A: the adjacency, a floating-point ``(N, N)`` tensor with a zero diagonal.
        aggregation: ``"sum"`` (default), ``"mean"``, ``"symmetric"`` or ``"kipf"``.

    Shape:
        ``(N, N) -> (N, N)``.

    Example::

        >>> A = torch.tensor([[0., 1.], [1., 0.]])
        >>> propagation_matrix(A, "kipf")
        tensor([[0.5000, 0.5000],
                [0.5000, 0.5000]])
    """
    owner = "propagation_matrix"
    check_tensor(A, "A", owner, shape=("N", "N"), dtype="float")
    if A.shape[0] != A.shape[1]:
        check_tensor(A, "A", owner, shape=(A.shape[0], A.shape[0]))
    aggregation = check_choice(aggregation, "aggregation", owner, ("sum", "mean", "symmetric", "kipf"))
    M = _neighbour_matrix(A, aggregation)
    return M if aggregation == "kipf" else M + torch.eye(A.shape[0], dtype=A.dtype, device=A.device)


def _check_graph(module: nn.Module, H, A, d_in: int, dtype: torch.dtype) -> None:
    """H (d_in, N) and A (N, N), both of the weights' dtype: the one-line error otherwise."""
    ok = (isinstance(H, torch.Tensor) and H.dim() == 2 and H.shape[0] == d_in and H.dtype == dtype
          and isinstance(A, torch.Tensor) and A.shape == (H.shape[1], H.shape[1]) and A.dtype == dtype)
    if not ok:
        owner = type(module).__name__
        check_input(H, "H", owner, shape=(d_in, "N"), dtype=dtype)
        check_input(A, "A", owner, shape=(H.shape[1], H.shape[1]), dtype=dtype)


# --------------------------------------------------------------------------- graph convolution
class GraphConv(nn.Module):
    """A graph convolutional layer: the book's simple layer (eq. G.1) and its variants of §13.8.

    Args:
        d_in: D_in, the size of each input node embedding (rows of H).
        d_out: D_out, the size of each output embedding (rows of Ω).
        aggregation: how neighbours are summarised: ``"sum"`` (default, the simple layer),
            ``"mean"``, ``"symmetric"`` (the book's Kipf normalisation), ``"max"``, or
            ``"kipf"`` (GCNConv's D̃^-½ (A + I) D̃^-½, which includes the node itself).
        combine: how the node itself joins its neighbours: ``"add"`` (default),
            ``"diagonal"`` (weight 1 + ε, ε learned), ``"separate"`` (its own map Ψ) or
            ``"residual"`` (the input stacked under the output). ``"kipf"`` takes ``"add"`` only.
        activation: a[•], ``"relu"`` (default) or ``"identity"``.
        bias: with β (default True).
        generator: the initial weights' randomness (keyword-only), a ``torch.Generator`` or
            an int seed: Ω and Ψ from Glorot's uniform distribution, β = 0, ε = 0.
            Default: torch's global generator.

    Shape:
        ``H``: ``(D_in, N)``, ``A``: ``(N, N)`` -> ``(D_out, N)``, or ``(D_out + D_in, N)``
        with ``combine="residual"`` (:attr:`output_size`).

    Example::

        >>> layer = GraphConv(3, 4, generator=0)
        >>> A = torch.tensor([[0., 1., 0.], [1., 0., 1.], [0., 1., 0.]])  # a path 0 - 1 - 2
        >>> layer(torch.randn(3, 3), A).shape
        torch.Size([4, 3])
    """

    def __init__(self, d_in: int, d_out: int, *, aggregation: str = "sum", combine: str = "add",
                 activation: str = "relu", bias: bool = True, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = type(self).__name__
        self.d_in = check_int(d_in, "d_in", owner)
        self.d_out = check_int(d_out, "d_out", owner)
        self.aggregation = check_choice(aggregation, "aggregation", owner, AGGREGATIONS)
        self.combine = check_choice(combine, "combine", owner, COMBINES)
        if aggregation == "kipf" and combine != "add":
            raise ValueError(f"The 'combine' parameter of {owner} must be 'add' with aggregation='kipf' "
                             f"(its normalisation already includes the node). Got {combine!r} instead.")
        self.activation = check_choice(activation, "activation", owner, ACTIVATIONS)
        check_bool(bias, "bias", owner)
        generator = as_generator(generator, owner)
        with initialised_from(self, generator):
            self.omega = nn.Parameter(torch.empty(self.d_out, self.d_in))  # Ω: (D_out, D_in)
            self.beta = nn.Parameter(torch.empty(self.d_out)) if bias else None  # β: (D_out,)
            self.psi = nn.Parameter(torch.empty(self.d_out, self.d_in)) if combine == "separate" else None  # Ψ
            self.epsilon = nn.Parameter(torch.empty(())) if combine == "diagonal" else None  # ε: ()

    @property
    def output_size(self) -> int:
        """The rows of the output: D_out, or D_out + D_in with ``combine="residual"``."""
        return self.d_out + self.d_in if self.combine == "residual" else self.d_out

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Ω and Ψ from Glorot's uniform distribution (Ω first), β = 0, ε = 0."""
        _glorot_(self.omega, self.d_in, self.d_out, generator)
        _glorot_(self.psi, self.d_in, self.d_out, generator)
        with torch.no_grad():
            for t in (self.beta, self.epsilon):
                if t is not None and not t.is_meta:
                    t.zero_()

    def aggregate(self, H: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        """agg: the neighbours' summary, ``(D_in, N)`` (for ``"kipf"``, the node is included)."""
        if self.aggregation == "max":
            return _max_neighbours(H, A)
        return H @ _neighbour_matrix(A, self.aggregation)  # (D_in, N) @ (N, N) -> (D_in, N)

    def forward(self, H: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        _check_graph(self, H, A, self.d_in, self.omega.dtype)
        agg = self.aggregate(H, A)  # (D_in, N)
        if self.combine == "add" and self.aggregation != "kipf":
            agg = agg + H  # H (A + I) for "sum"
        elif self.combine == "diagonal":
            agg = agg + (1 + self.epsilon) * H  # H (A + (1 + ε) I) for "sum"
        pre = self.omega @ agg  # Ω agg: (D_out, N)
        if self.combine == "separate":
            pre = pre + self.psi @ H  # + Ψ H
        if self.beta is not None:
            pre = pre + self.beta[:, None]  # + β 1ᵀ
        out = _activate(pre, self.activation)
        return torch.cat([out, H], 0) if self.combine == "residual" else out  # (D_out + D_in, N) when residual

    def extra_repr(self) -> str:
        return (f"d_in={self.d_in}, d_out={self.d_out}, aggregation={self.aggregation!r}, "
                f"combine={self.combine!r}, activation={self.activation!r}, bias={self.beta is not None}")


# --------------------------------------------------------------------------- graph attention
class GraphAttention(nn.Module):
    """Graph attention (§13.8.6, eq. G.3): weights computed from the data, over the node and its neighbours only.

    Args:
        d_in: D_in, the size of each input node embedding.
        d_out: D_out, the size of each head's output embedding.
        heads: the number of heads, each with its own Ω and φ (default 1).
        concat: stack the heads' outputs (``heads · D_out`` rows, default) or average them (D_out rows).
        negative_slope: the slope of the LeakyReLU below zero in the scores (default 0.2).
        activation: a[•], ``"relu"`` (default) or ``"identity"`` (then it equals PyG's ``GATConv``).
        bias: with β (default True).
        generator: the initial weights' randomness (keyword-only), a ``torch.Generator`` or
            an int seed: Ω and φ from Glorot's uniform distribution, β = 0.

    Parameters: ``omega`` ``(heads · D_out, D_in)`` with head h in rows h·D_out ... (h+1)·D_out - 1;
    ``phi`` ``(heads, 2 · D_out)``, whose first half scores the neighbour h'_m and second half
    the receiving node h'_n; ``beta`` ``(heads · D_out,)`` or ``(D_out,)`` when averaging.

    Shape:
        ``H``: ``(D_in, N)``, ``A``: ``(N, N)`` -> ``(heads · D_out, N)`` (concat) or ``(D_out, N)``.

    Example::

        >>> gat = GraphAttention(3, 4, heads=2, generator=0)
        >>> A = torch.tensor([[0., 1., 0.], [1., 0., 1.], [0., 1., 0.]])
        >>> P = gat.attention(torch.randn(3, 3), A)    # (heads, N, N), columns sum to 1
        >>> P[:, 2, 0].tolist()                        # nodes 0 and 2 are not neighbours
        [0.0, 0.0]
    """

    def __init__(self, d_in: int, d_out: int, *, heads: int = 1, concat: bool = True, negative_slope: float = 0.2,
                 activation: str = "relu", bias: bool = True, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = type(self).__name__
        self.d_in = check_int(d_in, "d_in", owner)
        self.d_out = check_int(d_out, "d_out", owner)
        self.heads = check_int(heads, "heads", owner)
        self.concat = check_bool(concat, "concat", owner)
        self.negative_slope = check_float(negative_slope, "negative_slope", owner, low=0.0)
        self.activation = check_choice(activation, "activation", owner, ACTIVATIONS)
        check_bool(bias, "bias", owner)
        generator = as_generator(generator, owner)
        with initialised_from(self, generator):
            self.omega = nn.Parameter(torch.empty(self.heads * self.d_out, self.d_in))  # Ω: (heads·D_out, D_in)
            self.phi = nn.Parameter(torch.empty(self.heads, 2 * self.d_out))  # φ: (heads, 2·D_out)
            self.beta = nn.Parameter(torch.empty(self.output_size)) if bias else None  # β

    @property
    def output_size(self) -> int:
        """The rows of the output: heads · D_out with ``concat``, else D_out."""
        return self.heads * self.d_out if self.concat else self.d_out

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Ω and φ from Glorot's uniform distribution (as GATConv), β = 0."""
        _glorot_(self.omega, self.d_in, self.heads * self.d_out, generator)
        _glorot_(self.phi, self.heads, 2 * self.d_out, generator)  # PyG's glorot on (1, heads, D_out): same bound
        if self.beta is not None and not self.beta.is_meta:
            with torch.no_grad():
                self.beta.zero_()

    def _transform(self, H: torch.Tensor) -> torch.Tensor:
        return (self.omega @ H).view(self.heads, self.d_out, H.shape[1])  # H' = Ω H: (heads, D_out, N)

    def _attention(self, Hp: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        phi_m, phi_n = self.phi[:, :self.d_out], self.phi[:, self.d_out:]  # (heads, D_out) each
        score_m = torch.einsum("hd,hdm->hm", phi_m, Hp)  # φ_mᵀ h'_m: (heads, N)
        score_n = torch.einsum("hd,hdn->hn", phi_n, Hp)  # φ_nᵀ h'_n: (heads, N)
        s = nn.functional.leaky_relu(score_m[:, :, None] + score_n[:, None, :], self.negative_slope)  # (heads, N, N)
        eye = torch.eye(A.shape[0], dtype=torch.bool, device=A.device)
        allowed = (A != 0) | eye  # ne[n] ∪ {n}: the non-zeros of A + I
        s = s.masked_fill(~allowed, float("-inf"))
        return torch.softmax(s, dim=1)  # over m, for each column n: (heads, N, N)

    def attention(self, H: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        """The attention weights P ``(heads, N, N)``: P[h, m, n] is node m's weight in node n's sum (eq. G.3).

        Each column sums to one over the node and its neighbours; every other entry is exactly zero.
        """
        _check_graph(self, H, A, self.d_in, self.omega.dtype)
        return self._attention(self._transform(H), A)

    def forward(self, H: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        _check_graph(self, H, A, self.d_in, self.omega.dtype)
        Hp = self._transform(H)  # (heads, D_out, N)
        out = Hp @ self._attention(Hp, A)  # H' P per head: (heads, D_out, N)
        out = out.reshape(self.output_size, -1) if self.concat else out.mean(0)  # (heads·D_out, N) or (D_out, N)
        if self.beta is not None:
            out = out + self.beta[:, None]
        return _activate(out, self.activation)

    def extra_repr(self) -> str:
        return (f"d_in={self.d_in}, d_out={self.d_out}, heads={self.heads}, concat={self.concat}, "
                f"negative_slope={self.negative_slope}, activation={self.activation!r}, bias={self.beta is not None}")


class GraphSequential(nn.ModuleList):
    """Graph layers applied in turn on one graph: H_k = layer_k[H_{k-1}, A] (fig. 13.7c).

    ``nn.Sequential`` passes one tensor along; graph layers also need A, the same at every
    layer. A ``ModuleList``, so its parameters are named ``0.omega``, ``1.omega``, ...

    Args:
        layers: graph layers, each called as ``layer(H, A)``, the output size of one the
            input size of the next.

    Shape:
        ``H``: ``(D_0, N)``, ``A``: ``(N, N)`` -> ``(D_K, N)``.

    Example::

        >>> net = GraphSequential([GraphConv(3, 8, generator=0), GraphConv(8, 2, generator=1)])
        >>> net(torch.ones(3, 4), torch.ones(4, 4) - torch.eye(4)).shape
        torch.Size([2, 4])
    """

    def __init__(self, layers=()):
        layers = list(check_sequence(layers, "layers", "GraphSequential"))
        for layer in layers:
            check_instance(layer, "layers", "GraphSequential", nn.Module)
        super().__init__(layers)

    def forward(self, H: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        for layer in self:
            H = layer(H, A)
        return H


# --------------------------------------------------------------------------- heads
def readout(H: torch.Tensor, node_graph: torch.Tensor, n_graphs: int, mode: str = "mean") -> torch.Tensor:
    """Pool each graph's node embeddings into one vector (§13.3.1, fig. 13.6a; §13.5.1 for batches).

    Args:
        H: node embeddings ``(D, N)``, one column per node of a batch of graphs.
        node_graph: ``(N,)`` integers, the graph each node belongs to, in [0, ``n_graphs``).
        n_graphs: the number of graphs in the batch.
        mode: ``"mean"`` (default), ``"max"`` (elementwise) or ``"sum"``. A graph without
            nodes pools to zeros.

    Shape:
        ``(D, N)``, ``(N,)`` -> ``(D, n_graphs)``.

    Example::

        >>> readout(torch.tensor([[1., 3., 5.]]), torch.tensor([0, 0, 1]), 2)
        tensor([[2., 5.]])
    """
    owner = "readout"
    check_tensor(H, "H", owner, ndim=2, dtype="float")
    check_tensor(node_graph, "node_graph", owner, shape=(H.shape[1],), dtype="int")
    n_graphs = check_int(n_graphs, "n_graphs", owner)
    mode = check_choice(mode, "mode", owner, ("mean", "max", "sum"))
    if node_graph.numel() and not (0 <= int(node_graph.min()) and int(node_graph.max()) < n_graphs):
        raise ValueError(f"The 'node_graph' parameter of {owner} must hold graph indices in [0, {n_graphs}). "
                         f"Got values in [{int(node_graph.min())}, {int(node_graph.max())}] instead.")
    index = node_graph.to(H.device).expand(H.shape[0], -1)  # (D, N)
    out = H.new_zeros(H.shape[0], n_graphs)
    if mode == "max":
        return out.scatter_reduce(1, index, H, "amax", include_self=False)  # (D, G)
    out = out.scatter_add(1, index, H)  # Σ over each graph's nodes: (D, G)
    if mode == "mean":
        count = torch.bincount(node_graph.to(H.device), minlength=n_graphs).clamp(min=1)  # (G,)
        out = out / count.to(H.dtype)
    return out


def edge_score(H: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """The dot product h_mᵀ h_n for each pair of nodes (fig. 13.6c): a logit whose sigmoid is P(edge m–n).

    Args:
        H: node embeddings ``(D, N)``.
        pairs: ``(M, 2)`` integer node indices (m, n).

    Shape:
        ``(D, N)``, ``(M, 2)`` -> ``(M,)``.

    Example::

        >>> edge_score(torch.tensor([[1., 2., 3.]]), torch.tensor([[0, 1], [1, 2]]))
        tensor([2., 6.])
    """
    owner = "edge_score"
    check_tensor(H, "H", owner, ndim=2, dtype="float")
    check_tensor(pairs, "pairs", owner, shape=("M", 2), dtype="int")
    if pairs.numel() and not (0 <= int(pairs.min()) and int(pairs.max()) < H.shape[1]):
        raise ValueError(f"The 'pairs' parameter of {owner} must hold node indices in [0, {H.shape[1]}). "
                         f"Got values in [{int(pairs.min())}, {int(pairs.max())}] instead.")
    pairs = pairs.to(H.device)
    return (H[:, pairs[:, 0]] * H[:, pairs[:, 1]]).sum(0)  # (D, M) ⊙ (D, M) summed over D: (M,)
