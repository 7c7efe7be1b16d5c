"""Training graph networks on the tasks of fig. 13.6, and the numbers that judge them (UDL §13.3, §13.6).

The three tasks and their losses (§13.3.1):

1. **graph classification**: one label per graph, the multiclass cross-entropy of each
   graph's logits (eq. 5.24), averaged over a batch of graphs; the batch is one graph
   with a block-diagonal adjacency (§13.5.1);
2. **node classification**: one label per node. *Inductive* (fig. 13.8a): many
   labelled graphs, batched as above; the model is judged on new graphs.
   *Transductive* (fig. 13.8b): one graph in which only some nodes carry labels; the
   cross-entropy is taken over those nodes only (:func:`masked_cross_entropy`: the
   others are marked :data:`UNLABELLED`), and the model is judged on the rest;
3. **edge prediction**: the binary cross-entropy (eq. 5.20) of the scores of the
   graph's edges (label 1) and of as many node pairs that are not edges (label 0).
   The non-edges are *negative samples*, drawn anew at every step:
   seen once, the model would learn those particular pairs rather than what makes a pair
   unlikely. Judged on held-out edges against held-out non-edges (ROC AUC).

Every recipe calls :func:`udl.train.fit` with Adam (§6.4). fit batches tensors, so it is
given the numbers of the graphs (or of the steps), and a module that wraps the model
builds the batch they name and returns its loss. Step s of a run depends on ``seed``
and s alone: a run is repeatable.

Baselines: :class:`udl.models.gnn.StructureBlind` (the same network shown no edges, trained
by the same recipe) and, for edges, :func:`common_neighbours`, the classic score of link
prediction: the number of neighbours two nodes share, (A²)_mn.

Example::

    >>> from udl.data.graphs import karate_club
    >>> from udl.models.gnn import GNNConfig, NodeClassifier
    >>> g = karate_club()
    >>> model = NodeClassifier(GNNConfig.karate(), generator=0)
    >>> losses = train_transductive(model, g, torch.tensor([0, 33]), steps=100, device="cpu")
    >>> node_accuracy(model, g, nodes=torch.arange(1, 33)) > 0.9
    True
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from udl.data.graphs import Graph, batch_graphs, negative_edges
from udl.models.gnn import _with_adjacency
from udl.train.batches import mixed_seed
from udl.train.loop import fit
from udl.validate import _refuse, check_float, check_instance, check_int, check_sequence, check_tensor

__all__ = ["UNLABELLED", "masked_cross_entropy", "node_targets", "edge_loss", "train_graph_classifier", "train_node_classifier", "train_transductive", "train_edge_predictor",
           "graph_accuracy", "node_accuracy", "edge_logits", "common_neighbours", "roc_auc"]

UNLABELLED = -1  # the target of a node whose label the model is not shown (transductive learning)


# --------------------------------------------------------------------------- losses
def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The multiclass cross-entropy (UDL eq. 5.24) averaged over the labelled nodes only.

    L = -(1/|S|) Σ_{n ∈ S} log softmax[logits_n]_{y_n}, S the nodes whose target is not
    :data:`UNLABELLED`. The unlabelled nodes still shape the prediction (they pass
    messages), but their labels play no part.

    Shape:
        ``logits``: ``(N, K)``; ``targets``: ``(N,)`` class indices or ``UNLABELLED`` -> scalar.

    Example::

        >>> masked_cross_entropy(torch.tensor([[0.0, 0.0], [5.0, -5.0]]), torch.tensor([UNLABELLED, 0])) < 1e-4
        tensor(True)
    """
    return F.cross_entropy(logits, targets, ignore_index=UNLABELLED)


def node_targets(labels: torch.Tensor, labelled: torch.Tensor) -> torch.Tensor:
    """The targets of transductive training: ``labels`` at the ``labelled`` nodes, :data:`UNLABELLED` elsewhere.

    Args:
        labels: ``(N,)`` class indices of every node.
        labelled: the nodes whose label is shown, as indices ``(L,)`` or a boolean mask ``(N,)``.

    Example::

        >>> node_targets(torch.tensor([0, 1, 1, 0]), torch.tensor([1, 3])).tolist()
        [-1, 1, -1, 0]
    """
    owner = "node_targets"
    check_tensor(labels, "labels", owner, ndim=1, dtype="int")
    mask = _mask(labelled, len(labels), "labelled", owner)
    return torch.where(mask.to(labels.device), labels, torch.full_like(labels, UNLABELLED))


def _mask(nodes: torch.Tensor, n: int, name: str, owner: str) -> torch.Tensor:
    """A boolean ``(n,)`` mask from indices or a mask, refusing indices out of range and empty selections."""
    check_tensor(nodes, name, owner, ndim=1)
    if nodes.dtype == torch.bool:
        if len(nodes) != n:
            _refuse(name, owner, f"a boolean mask of length {n} or node indices", f"a mask of length {len(nodes)}")
        mask = nodes
    else:
        check_tensor(nodes, name, owner, ndim=1, dtype="int")
        if nodes.numel() and (int(nodes.min()) < 0 or int(nodes.max()) >= n):
            _refuse(name, owner, f"node indices in [0, {n})", f"[{int(nodes.min())}, {int(nodes.max())}]")
        mask = torch.zeros(n, dtype=torch.bool, device=nodes.device)
        mask[nodes] = True
    if not bool(mask.any()):
        _refuse(name, owner, "at least one node", "none")
    return mask


def edge_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The binary cross-entropy (UDL eq. 5.20) of edge logits: -mean[y log σ(s) + (1 - y) log(1 - σ(s))].

    Shape:
        ``logits``, ``targets``: ``(M,)``, targets 1 for an edge and 0 for a non-edge -> scalar.
    """
    return F.binary_cross_entropy_with_logits(logits, targets)


# --------------------------------------------------------------------------- the objectives fit trains
def _labelled_graphs(graphs, name: str, owner: str) -> list[Graph]:
    check_sequence(graphs, name, owner, of="Graphs")
    graphs = list(graphs)
    if not graphs or not all(isinstance(g, Graph) and g.y is not None for g in graphs):
        _refuse(name, owner, "a non-empty list of labelled Graphs (y set)", f"{len(graphs)} items" if graphs else "[]",
                TypeError if graphs else ValueError)
    return graphs


def _device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


class _GraphObjective(nn.Module):
    """A model, its graphs and its loss as one module: ``forward(rows)`` is the loss of the batch of graphs ``rows``.

    fit batches tensors; a batch of graphs is one block-diagonal graph (§13.5.1). So fit
    draws the graphs' numbers (its data are ``torch.arange(len(graphs))``, shuffled each
    epoch from its ``seed``) and this module builds the batch they name, its targets
    concatenated: graph labels ``(B,)`` or node labels ``(N,)``.
    """

    def __init__(self, model: nn.Module, graphs: list[Graph], targets: list[torch.Tensor], loss):
        super().__init__()
        self.model, self.graphs, self.targets, self.loss = model, graphs, targets, loss

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        rows = rows.tolist()
        device = _device(self.model)
        batch = batch_graphs([self.graphs[i] for i in rows]).to(device)  # one graph, A block-diagonal
        targets = torch.cat([self.targets[i].reshape(-1) for i in rows]).to(device)  # (B,) or (N,)
        return self.loss(self.model(batch), targets)


class _EdgeObjective(nn.Module):
    """An edge predictor, its training graph and its loss: ``forward(step)`` is the loss of step ``step``.

    Step s scores every edge of the graph (target 1) and ``negatives`` times as many node
    pairs that are not edges (target 0), drawn uniformly without replacement by
    :func:`udl.data.graphs.negative_edges` from a generator seeded with ``(seed, s)``: new
    negatives every step, the same ones for the same seed and step. With ``drop_edges``
    that share of the edges, drawn from the same generator, is removed from the graph the
    network passes messages over (but still scored). fit's data are the step numbers
    ``torch.arange(steps)``, one per batch, in order.
    """

    def __init__(self, model: nn.Module, graph: Graph, negatives: int, seed: int, drop_edges: float = 0.0):
        super().__init__()
        self.model, self.graph, self.negatives, self.seed, self.drop_edges = model, graph, negatives, seed, drop_edges
        self.positive = graph.edges.cpu()  # (M, 2): the training graph's edges

    def sample(self, step: int) -> tuple[torch.Tensor, torch.Tensor, Graph]:
        """Step ``step``'s pairs ``(M + negatives·M, 2)`` (the edges first), targets (1 then 0) and the graph seen."""
        generator = torch.Generator().manual_seed(mixed_seed(self.seed, step))
        m = len(self.positive)
        negative = negative_edges(self.graph.A.cpu(), self.negatives * m, generator=generator,
                                  node_graph=self.graph.node_graph)  # (negatives·M, 2), new every step
        pairs = torch.cat([self.positive, negative])
        seen = self.graph
        if self.drop_edges > 0:  # hide a share of the edges from the messages; they are still scored as edges
            hidden = self.positive[torch.randperm(m, generator=generator)[:round(self.drop_edges * m)]]
            A = self.graph.A.clone()
            A[hidden[:, 0], hidden[:, 1]] = A[hidden[:, 1], hidden[:, 0]] = 0
            seen = _with_adjacency(self.graph, A)  # a subgraph: symmetric, binary
        return pairs, torch.cat([torch.ones(m), torch.zeros(self.negatives * m)]), seen

    def forward(self, step: torch.Tensor) -> torch.Tensor:
        pairs, targets, seen = self.sample(int(step.reshape(-1)[0]))
        device = _device(self.model)
        return edge_loss(self.model(seen.to(device), pairs.to(device)), targets.to(device))


# --------------------------------------------------------------------------- the recipes
def _adam(lr: float, weight_decay: float):
    return lambda params: torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _check_recipe(owner: str, model, steps, lr, weight_decay, seed) -> None:
    check_instance(model, "model", owner, nn.Module)
    check_int(steps, "steps", owner)
    check_float(lr, "lr", owner, low=0.0, low_open=True)
    check_float(weight_decay, "weight_decay", owner, low=0.0)
    check_int(seed, "seed", owner, minimum=0)


def train_graph_classifier(model: nn.Module, graphs: list[Graph], *, steps: int, batch_size: int = 32,
                           lr: float = 0.01, weight_decay: float = 0.0, seed: int = 0,
                           device: str | torch.device = "auto", progress: bool | None = False) -> list[float]:
    """Train a graph classifier (fig. 13.6a) on labelled graphs: Adam on the mean cross-entropy of each batch.

    Args:
        model: maps a batch of graphs to ``(n_graphs, K)`` logits (a
            :class:`~udl.models.gnn.GraphClassifier`, or one wrapped in
            :class:`~udl.models.gnn.StructureBlind`); trained in place.
        graphs: the training graphs, each with its label ``y`` of shape ().
        steps: Adam steps.
        batch_size: graphs per step. Default 32.
        lr: Adam's learning rate. Default 0.01.
        weight_decay: L2 penalty added to the gradient (eq. 9.5). Default 0.
        seed: the order of the graphs. Default 0.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``. Default "auto".
        progress: fit's progress bar. Default False.

    Returns:
        The loss of every step.
    """
    owner = "train_graph_classifier"
    _check_recipe(owner, model, steps, lr, weight_decay, seed)
    return _train_on_graphs(owner, model, graphs, F.cross_entropy, steps, batch_size, lr, weight_decay, seed,
                            device, progress, level="graph")


def train_node_classifier(model: nn.Module, graphs: list[Graph], *, steps: int, batch_size: int = 8,
                          lr: float = 0.01, weight_decay: float = 0.0, seed: int = 0,
                          device: str | torch.device = "auto", progress: bool | None = False) -> list[float]:
    """Train a node classifier inductively (fig. 13.8a): many graphs whose every node is labelled.

    Adam on the cross-entropy averaged over all nodes of each batch of graphs. The
    trained model is then applied to graphs it has never seen (:func:`node_accuracy`).

    Args:
        model: maps a graph with N nodes to ``(N, K)`` logits (a
            :class:`~udl.models.gnn.NodeClassifier`, or one wrapped in
            :class:`~udl.models.gnn.StructureBlind`); trained in place.
        graphs: the training graphs, each with node labels ``y`` ``(N,)``.
        steps, batch_size, lr, weight_decay, seed, device, progress: as for
            :func:`train_graph_classifier` (batch_size default 8).

    Returns:
        The loss of every step.
    """
    owner = "train_node_classifier"
    _check_recipe(owner, model, steps, lr, weight_decay, seed)
    return _train_on_graphs(owner, model, graphs, F.cross_entropy, steps, batch_size, lr, weight_decay, seed,
                            device, progress, level="node")


def _train_on_graphs(owner, model, graphs, loss, steps, batch_size, lr, weight_decay, seed, device, progress, *,
                     level: str) -> list[float]:
    """fit over batches of ``batch_size`` graphs, drawn epoch by epoch without replacement (fit's order)."""
    graphs = _labelled_graphs(graphs, "graphs", owner)
    for g in graphs:
        if (g.y.dim() == 0) != (level == "graph") or (level == "node" and g.y.shape != (g.n_nodes,)):
            _refuse("graphs", owner, "graphs with one label per graph (y of shape ())" if level == "graph" else
                    "graphs with one label per node (y of shape (N,))", f"y of shape {tuple(g.y.shape)}")
    batch_size = check_int(batch_size, "batch_size", owner, maximum=len(graphs))
    objective = _GraphObjective(model, graphs, [g.y.long() for g in graphs], loss)
    return fit(objective, (torch.arange(len(graphs)),), None, _adam(lr, weight_decay), steps=steps,
               batch_size=batch_size, seed=seed, device=device, progress=progress)


def train_transductive(model: nn.Module, graph: Graph, labelled: torch.Tensor, *, steps: int, lr: float = 0.01,
                       weight_decay: float = 5e-4, seed: int = 0, device: str | torch.device = "auto",
                       progress: bool | None = False) -> list[float]:
    """Train a node classifier transductively (fig. 13.8b): one graph, only the ``labelled`` nodes' labels shown.

    Every step passes the whole graph through the model (all nodes pass messages) and
    takes Adam's step on :func:`masked_cross_entropy` over the labelled nodes. The other
    nodes' labels (in ``graph.y``) are never read.

    Args:
        model: maps the graph to ``(N, K)`` logits; trained in place.
        graph: one graph with node labels ``y`` ``(N,)``.
        labelled: the nodes whose label is shown: indices ``(L,)`` or a boolean mask ``(N,)``.
        steps: Adam steps (full batch: one per pass over the graph).
        lr: Adam's learning rate. Default 0.01.
        weight_decay: L2 penalty (eq. 9.5). Default 5e-4 (Kipf & Welling's).
        seed, device, progress: as for :func:`train_graph_classifier`.

    Returns:
        The loss of every step.
    """
    owner = "train_transductive"
    _check_recipe(owner, model, steps, lr, weight_decay, seed)
    check_instance(graph, "graph", owner, Graph)
    if graph.y is None or tuple(graph.y.shape) != (graph.n_nodes,):
        _refuse("graph", owner, "a graph with one label per node (y of shape (N,))",
                "no labels" if graph.y is None else f"y of shape {tuple(graph.y.shape)}")
    targets = node_targets(graph.y.long(), labelled)  # the hidden labels become UNLABELLED here
    objective = _GraphObjective(model, [graph], [targets], masked_cross_entropy)
    return fit(objective, (torch.zeros(1, dtype=torch.long),), None, _adam(lr, weight_decay), steps=steps,
               batch_size=1, seed=seed, device=device, progress=progress)  # every step: the whole graph


def train_edge_predictor(model: nn.Module, graph: Graph, *, steps: int, negatives: int = 1, drop_edges: float = 0.0,
                         lr: float = 0.01, weight_decay: float = 0.0, seed: int = 0,
                         device: str | torch.device = "auto", progress: bool | None = False) -> list[float]:
    """Train an edge predictor (fig. 13.6c) on a graph's edges against fresh negative samples every step.

    Step s scores all the edges of ``graph`` and ``negatives`` times as many non-edges
    drawn anew from ``(seed, s)``, uniformly among the pairs that are not edges of ``graph``
    (held-out edges among them: they are unknown), and takes Adam's step on
    :func:`edge_loss`. Hold out the edges to test on before (``udl.data.graphs.split_edges``)
    and pass the training graph.

    Args:
        model: maps ``(graph, pairs (M, 2))`` to ``(M,)`` logits (an
            :class:`~udl.models.gnn.EdgePredictor`); trained in place.
        graph: the training graph.
        steps: Adam steps.
        negatives: non-edges per edge at each step. Default 1.
        drop_edges: the share of the edges hidden from the network's messages at each step
            (drawn anew; DropEdge, Rong et al. 2020), in [0, 1). The hidden edges are still
            scored as edges, so the network learns to find edges it cannot see, as it must
            for the held-out ones (without it, every edge it is trained on is also in the
            graph it reads, which is never so for a held-out edge). Default 0.
        lr, weight_decay, seed, device, progress: as for :func:`train_graph_classifier`.

    Returns:
        The loss of every step.
    """
    owner = "train_edge_predictor"
    _check_recipe(owner, model, steps, lr, weight_decay, seed)
    check_instance(graph, "graph", owner, Graph)
    negatives = check_int(negatives, "negatives", owner)
    m, n = graph.n_edges, graph.n_nodes
    if m == 0:
        _refuse("graph", owner, "a graph with at least one edge", "no edges")
    if graph.node_graph is None and negatives * m > n * (n - 1) // 2 - m:
        _refuse("negatives", owner, f"at most {(n * (n - 1) // 2 - m) // m} (the graph has "
                f"{n * (n - 1) // 2 - m} non-edges for its {m} edges)", str(negatives))
    drop_edges = check_float(drop_edges, "drop_edges", owner, low=0.0, high=1.0, high_open=True)
    objective = _EdgeObjective(model, graph, negatives, seed, drop_edges)
    return fit(objective, (torch.arange(steps),), None, _adam(lr, weight_decay), steps=steps, batch_size=1,
               shuffle=False, device=device, progress=progress)  # batch s is the step number s


# --------------------------------------------------------------------------- measurements
def _evaluate(model: nn.Module, *inputs):
    """``model(*inputs)`` in eval mode without gradients, on the model's device (its mode restored)."""
    device, was_training = _device(model), model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(*(x.to(device) for x in inputs)).float().cpu()
    finally:
        model.train(was_training)


def graph_accuracy(model: nn.Module, graphs: list[Graph], *, batch_size: int = 32) -> float:
    """The fraction of graphs whose largest logit is their label.

    Args:
        model: maps a batch of graphs to ``(n_graphs, K)`` logits.
        graphs: labelled graphs (``y`` of shape ()).
        batch_size: graphs per forward pass (their A is one dense block-diagonal matrix, so
            its size grows as the square of the nodes in a batch). Default 32.
    """
    owner = "graph_accuracy"
    check_instance(model, "model", owner, nn.Module)
    graphs = _labelled_graphs(graphs, "graphs", owner)
    check_int(batch_size, "batch_size", owner)
    right = 0
    for start in range(0, len(graphs), batch_size):
        batch = batch_graphs(graphs[start:start + batch_size])
        right += int((_evaluate(model, batch).argmax(1) == batch.y.cpu()).sum())
    return right / len(graphs)


def node_accuracy(model: nn.Module, graphs: Graph | list[Graph], *, nodes: torch.Tensor | None = None) -> float:
    """The fraction of nodes whose largest logit is their label.

    Args:
        model: maps a graph with N nodes to ``(N, K)`` logits.
        graphs: one graph, or a list of graphs (all their nodes counted), with node labels ``y``.
        nodes: for one graph, the nodes to count (indices or a boolean mask), e.g. the
            held-out nodes of transductive learning. Default: all.
    """
    owner = "node_accuracy"
    check_instance(model, "model", owner, nn.Module)
    if isinstance(graphs, Graph):
        graph = _labelled_graphs([graphs], "graphs", owner)[0]
        mask = (torch.ones(graph.n_nodes, dtype=torch.bool) if nodes is None
                else _mask(nodes, graph.n_nodes, "nodes", owner).cpu())
    else:
        if nodes is not None:
            _refuse("nodes", owner, "None when several graphs are given", "a selection")
        graph = batch_graphs(_labelled_graphs(graphs, "graphs", owner))
        mask = torch.ones(graph.n_nodes, dtype=torch.bool)
    if graph.y.shape != (graph.n_nodes,):
        _refuse("graphs", owner, "graphs with one label per node", f"y of shape {tuple(graph.y.shape)}")
    right = _evaluate(model, graph).argmax(1) == graph.y.cpu()
    return float(right[mask].float().mean())


def edge_logits(model: nn.Module, graph: Graph, pairs: torch.Tensor) -> torch.Tensor:
    """An edge predictor's logits for node pairs, in eval mode without gradients: ``(M,)`` on the CPU.

    Args:
        model: maps ``(graph, pairs)`` to ``(M,)`` logits.
        graph: the graph the model sees (the training graph: held-out edges removed).
        pairs: ``(M, 2)`` node indices.
    """
    owner = "edge_logits"
    check_instance(model, "model", owner, nn.Module)
    check_instance(graph, "graph", owner, Graph)
    check_tensor(pairs, "pairs", owner, shape=("M", 2), dtype="int")
    return _evaluate(model, graph, pairs)


def common_neighbours(A: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """The number of neighbours each pair of nodes shares: (A²)_mn = Σ_k A_mk A_kn, a classic edge score.

    Friends of friends tend to become friends: in many real networks two nodes with many
    common neighbours are likely to be joined. No learning; a baseline for edge prediction.

    Args:
        A: ``(N, N)`` adjacency (of the training graph).
        pairs: ``(M, 2)`` node indices.

    Returns:
        ``(M,)`` float counts.

    Example::

        >>> A = torch.tensor([[0., 1, 1], [1, 0, 0], [1, 0, 0]])   # 1 - 0 - 2
        >>> common_neighbours(A, torch.tensor([[1, 2], [0, 1]])).tolist()
        [1.0, 0.0]
    """
    owner = "common_neighbours"
    check_tensor(A, "A", owner, ndim=2, dtype="float")
    check_tensor(pairs, "pairs", owner, shape=("M", 2), dtype="int")
    if pairs.numel() and (int(pairs.min()) < 0 or int(pairs.max()) >= A.shape[0]):
        _refuse("pairs", owner, f"node indices in [0, {A.shape[0]})", f"[{int(pairs.min())}, {int(pairs.max())}]")
    m, n = pairs[:, 0].to(A.device), pairs[:, 1].to(A.device)
    return (A[m] * A[n]).sum(1)  # row m ⊙ row n, summed: (A²)_mn without forming A²


def roc_auc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """The area under the ROC curve: the probability that a random positive outscores a random negative.

    Ties count one half (the Mann-Whitney statistic), so equal scores everywhere give 0.5.
    Computed by :func:`sklearn.metrics.roc_auc_score`.

    Args:
        positive: ``(P,)`` scores of the pairs that are edges.
        negative: ``(Q,)`` scores of the pairs that are not.

    Example::

        >>> roc_auc(torch.tensor([3.0, 1.0]), torch.tensor([2.0, 0.0]))
        0.75
    """
    owner = "roc_auc"
    for name, t in (("positive", positive), ("negative", negative)):
        check_tensor(t, name, owner, ndim=1, dtype="real")
        if not len(t):
            _refuse(name, owner, "at least one score", "none")
    scores = torch.cat([positive, negative]).detach().double().cpu().numpy()
    labels = np.r_[np.ones(len(positive)), np.zeros(len(negative))]
    from sklearn.metrics import roc_auc_score  # scikit-learn imports in ~1 s: only where it is used

    return float(roc_auc_score(labels, scores))
