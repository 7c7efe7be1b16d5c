"""Receptive fields of graph neural networks (UDL §13.7, fig. 13.9): measured by gradients, found by search.

A graph convolution mixes each node with its neighbours, so after K layers node n's
embedding depends on the input embeddings of the nodes at most K edges away, its
**K-hop neighbourhood**, the graph's counterpart of a convolution's receptive field
(§10.2.4). Two ways to find it, which must agree:

- **Found by breadth-first search** (:func:`hop_distances`, :func:`k_hop_neighbourhood`):
  from the graph alone. Information flows along an edge m -> n (A[m, n] ≠ 0), so the
  search walks the edges backwards from n: the distance of m is the fewest edges on a
  walk from m to n. For an undirected graph (A symmetric) the direction does not matter.
- **Measured** (:func:`graph_input_sensitivity`), for any differentiable network
  ``model(H, A) -> H'`` with H ``(D, N)``: the mean |∂ y_n / ∂ h_m| over random probe
  inputs, where y_n is a random projection of node n's output column. Its non-zeros are the
  nodes that feed node n; the union over probes removes the accidental zeros a ReLU (or a
  max) causes for one input. The measured field is never larger than the K-hop one; it is
  smaller only when every path is cut for every probe (a ReLU unit dead for all inputs in
  a very narrow network), so give the network a few units per layer and a few probes.

Example::

    >>> from udl.nn.graph import GraphConv
    >>> A = torch.tensor([[0., 1., 0., 0.], [1., 0., 1., 0.], [0., 1., 0., 1.], [0., 0., 1., 0.]])  # a path
    >>> hop_distances(A, 0).tolist()
    [0, 1, 2, 3]
    >>> two = [GraphConv(2, 16, generator=0), GraphConv(16, 16, generator=1)]
    >>> model = lambda H, A: two[1](two[0](H, A), A)
    >>> (graph_input_sensitivity(model, A, 2, nodes=[0]) > 0).tolist()
    [[True, True, True, False]]
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Sequence

import torch
from torch import nn

from udl.validate import as_generator, check_callable, check_int, check_tensor, is_int

__all__ = ["hop_distances", "k_hop_neighbourhood", "graph_input_sensitivity"]


def _check_adjacency(A, owner: str) -> torch.Tensor:
    check_tensor(A, "A", owner, ndim=2)
    if A.shape[0] != A.shape[1]:
        check_tensor(A, "A", owner, shape=(A.shape[0], A.shape[0]))
    return A


def hop_distances(A: torch.Tensor, node: int) -> torch.Tensor:
    """The fewest edges on a walk from every node to ``node``, by breadth-first search.

    Args:
        A: the adjacency ``(N, N)``; A[m, n] ≠ 0 is an edge m -> n.
        node: the target node n, in [0, N).

    Returns:
        ``(N,)`` long: 0 for ``node`` itself, -1 for nodes with no walk to it.

    Example::

        >>> A = torch.tensor([[0, 1, 0], [1, 0, 0], [0, 0, 0]])
        >>> hop_distances(A, 1).tolist()
        [1, 0, -1]
    """
    owner = "hop_distances"
    A = _check_adjacency(A, owner)
    n_nodes = A.shape[0]
    node = check_int(node, "node", owner, minimum=0, maximum=n_nodes - 1)
    into = [[] for _ in range(n_nodes)]  # into[n]: the nodes m with an edge m -> n
    for m, n in (A != 0).nonzero().tolist():
        into[n].append(m)
    distance = [-1] * n_nodes
    distance[node] = 0
    queue = deque([node])
    while queue:
        n = queue.popleft()
        for m in into[n]:
            if distance[m] < 0:
                distance[m] = distance[n] + 1
                queue.append(m)
    return torch.tensor(distance, dtype=torch.long)


def k_hop_neighbourhood(A: torch.Tensor, node: int, k: int) -> torch.Tensor:
    """The nodes with a walk of at most ``k`` edges to ``node`` (the node itself included), by breadth-first search.

    Args:
        A: the adjacency ``(N, N)``.
        node: the target node, in [0, N).
        k: the number of hops (0: the node alone).

    Returns:
        ``(N,)`` bool.

    Example::

        >>> A = torch.tensor([[0., 1., 0.], [1., 0., 1.], [0., 1., 0.]])
        >>> k_hop_neighbourhood(A, 0, 1).tolist()
        [True, True, False]
    """
    k = check_int(k, "k", "k_hop_neighbourhood", minimum=0)
    d = hop_distances(A, node)
    return (d >= 0) & (d <= k)


def graph_input_sensitivity(model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], A: torch.Tensor,
                            d_in: int, *, nodes: Sequence[int] | None = None, n_probes: int = 4,
                            generator: torch.Generator | int = 0) -> torch.Tensor:
    """Mean |∂ y_n / ∂ h_m| for each output node n and input node m: its non-zeros are n's receptive field.

    For each of ``n_probes`` random inputs H ~ N(0, 1) ``(d_in, N)``, the model is run once;
    for each node n in ``nodes``, y_n = rᵀ h'_n with a random r ~ N(0, I) (so no two output
    channels cancel), and |∂ y_n / ∂ H| is summed over the input channels. The gradients of
    many output nodes are taken in one batched backward pass (``is_grads_batched``, so the
    model must work under ``torch.vmap``'s backward, as udl.nn.graph's layers do). A module
    is run in evaluation mode (restored afterwards); its parameters receive no gradients.

    Args:
        model: a network ``model(H, A) -> H'``, H ``(d_in, N)`` and H' ``(D_out, N)``
            (a ``torch.nn.Module`` or any function of the two).
        A: the adjacency ``(N, N)``, of the dtype the model takes.
        d_in: the rows of H.
        nodes: the output nodes n (default: every node).
        n_probes: the number of random inputs (default 4).
        generator: draws H and r (keyword-only), a ``torch.Generator`` or an int seed (default 0).

    Returns:
        ``(len(nodes), N)`` float, non-negative; row i belongs to ``nodes[i]``. The receptive
        field of node n is ``result[i] > 0``.

    Example::

        >>> from udl.nn.graph import GraphConv
        >>> A = torch.tensor([[0., 1., 0.], [1., 0., 0.], [0., 0., 0.]])  # node 2 is alone
        >>> (graph_input_sensitivity(GraphConv(2, 3, generator=0), A, 2) > 0).int().tolist()
        [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    """
    owner = "graph_input_sensitivity"
    check_callable(model, "model", owner)
    A = _check_adjacency(A, owner)
    check_tensor(A, "A", owner, dtype="float")
    n_nodes = A.shape[0]
    d_in = check_int(d_in, "d_in", owner)
    if nodes is None:
        nodes = list(range(n_nodes))
    if not isinstance(nodes, (list, tuple, range)) or not nodes or \
            any(not is_int(n) or not 0 <= n < n_nodes for n in nodes):
        raise ValueError(f"The 'nodes' parameter of {owner} must be a non-empty list of node indices in "
                         f"[0, {n_nodes}). Got {nodes!r} instead.")
    n_probes = check_int(n_probes, "n_probes", owner)
    generator = as_generator(generator, owner, optional=False)
    was_training = model.training if isinstance(model, nn.Module) else None
    if was_training is not None:
        model.eval()
    total = torch.zeros(len(nodes), n_nodes, dtype=torch.float64)
    index = torch.tensor(list(nodes), dtype=torch.long, device=A.device)
    try:
        for _ in range(n_probes):
            H = torch.randn(d_in, n_nodes, generator=generator, dtype=torch.float64).to(A)
            H.requires_grad_(True)
            out = model(H, A)  # (D_out, N)
            r = torch.randn(out.shape[0], len(nodes), generator=generator, dtype=torch.float64).to(out)
            chunk = max(1, 2 ** 22 // out.numel())  # output nodes per backward pass: at most 4M numbers at once
            for lo in range(0, len(nodes), chunk):
                part = torch.arange(lo, min(lo + chunk, len(nodes)))
                # row i of the batch: ∂/∂H of y_n = r_iᵀ h'_n, n = nodes[i] (one backward pass for all of them)
                seeds = out.new_zeros(len(part), *out.shape)  # (B, D_out, N)
                seeds[torch.arange(len(part)), :, index[part]] = r[:, part].T
                (grad,) = torch.autograd.grad(out, H, grad_outputs=seeds, is_grads_batched=True,
                                              retain_graph=True)  # (B, d_in, N)
                total[part] += grad.abs().sum(1).double().cpu()  # summed over input channels: (B, N)
    finally:
        if was_training:
            model.train()
    return total / n_probes
