"""Judging samples of a generative model without its likelihood: mode coverage and a nearest-neighbour judge.

A GAN cannot evaluate the probability of a point (§14.2), so its samples are judged by
other means. Two simple ones for low-dimensional data whose modes are known:

- :func:`mode_coverage`: which modes of the data the samples reach (a sample belongs to its
  nearest mode if it lies within ``radius`` of it; a mode is covered when it receives at
  least ``min_share`` of the samples), and the share of samples far from every mode. Mode
  collapse (§15.2.2) shows as few covered modes.
- :func:`nearest_neighbour_accuracy`: the leave-one-out accuracy of the 1-nearest-neighbour
  classifier that tells two sets apart (the two-sample test of Friedman & Rafsky 1979, used
  to judge GANs by Lopez-Paz & Oquab 2017): near ½ when they come from the same
  distribution, 1 when they never mix. For n and m points drawn from one continuous
  distribution, a point's nearest neighbour among the other n + m − 1 is from its own set
  with probability (n − 1)/(n + m − 1), so the expected accuracy is
  (n(n − 1) + m(m − 1)) / ((n + m)(n + m − 1)), just under ½ for n = m.

Example::

    >>> centres = torch.tensor([[0.0, 0.0], [5.0, 0.0]])
    >>> samples = torch.tensor([[0.1, 0.0], [0.0, 0.2], [9.0, 9.0]])
    >>> r = mode_coverage(samples, centres, radius=0.5)
    >>> r["covered"], r["counts"], round(r["off_mode_share"], 3)
    (1, [2, 0], 0.333)
"""

from __future__ import annotations

import torch

from udl.validate import _refuse, check_float, check_int, check_tensor

__all__ = ["mode_coverage", "nearest_neighbour_accuracy", "same_distribution_accuracy"]


def _points(value, name: str, owner: str, *, dim: int | None = None, min_count: int = 1) -> torch.Tensor:
    check_tensor(value, name, owner, ndim=2, dtype="float")
    if len(value) < min_count or (dim is not None and value.shape[1] != dim):
        wanted = f"a tensor of at least {min_count} points" + (f" of dimension {dim}" if dim is not None else "")
        _refuse(name, owner, wanted, f"shape {tuple(value.shape)}")
    if not bool(torch.isfinite(value).all()):
        _refuse(name, owner, "finite points", "nan or inf")
    return value.detach().to("cpu", torch.float64)


def mode_coverage(samples: torch.Tensor, centres: torch.Tensor, radius: float, *,
                  min_share: float = 0.02) -> dict:
    """How many of the known modes the samples reach, and how many samples fall far from all of them.

    Each sample is assigned to its nearest centre if it lies within ``radius`` of it (for
    modes Norm[μ_k, σ²I], 3σ), else counted as off-mode.

    Args:
        samples: ``(N, D)`` points.
        centres: ``(K, D)`` the modes' centres.
        radius: the distance within which a sample belongs to a mode, > 0.
        min_share: the share of all samples a mode must receive to count as covered,
            in [0, 1]. Default: 0.02.

    Returns:
        ``{"covered": int, "counts": [K ints], "shares": [K floats], "off_mode_share": float}``.
    """
    owner = "mode_coverage"
    x = _points(samples, "samples", owner)
    c = _points(centres, "centres", owner, dim=x.shape[1])
    radius = check_float(radius, "radius", owner, low=0.0, low_open=True)
    min_share = check_float(min_share, "min_share", owner, low=0.0, high=1.0)
    distance, nearest = torch.cdist(x, c).min(1)  # (N,) each: the nearest centre and how far
    near = distance <= radius
    counts = torch.bincount(nearest[near], minlength=len(c))  # (K,)
    shares = counts.double() / len(x)
    return {"covered": int((shares >= min_share).sum()) if min_share > 0 else int((counts > 0).sum()),
            "counts": counts.tolist(), "shares": shares.tolist(),
            "off_mode_share": float(1.0 - near.double().mean())}


def nearest_neighbour_accuracy(a: torch.Tensor, b: torch.Tensor) -> float:
    """The leave-one-out accuracy of the 1-nearest-neighbour classifier telling set ``a`` from set ``b``.

    Every point of the pooled set is labelled with the set of its nearest other point;
    the accuracy is the share labelled correctly. Near ½ (exactly
    :func:`same_distribution_accuracy` in expectation) when ``a`` and ``b`` come from one
    distribution; 1 when each point's nearest neighbour is always from its own set.

    Args:
        a: ``(N, D)`` points (real examples). b: ``(M, D)`` points (samples). N, M ≥ 1, N + M ≥ 3.

    Returns:
        A float in [0, 1].
    """
    owner = "nearest_neighbour_accuracy"
    a = _points(a, "a", owner)
    b = _points(b, "b", owner, dim=a.shape[1])
    if len(a) + len(b) < 3:
        _refuse("b", owner, "a set making at least 3 points with a", f"{len(a)} + {len(b)} points")
    pooled = torch.cat([a, b])  # (N + M, D)
    labels = torch.cat([torch.zeros(len(a), dtype=torch.bool), torch.ones(len(b), dtype=torch.bool)])
    right = 0
    for start in range(0, len(pooled), 2048):  # blocks of rows: memory O(2048 (N + M))
        rows = pooled[start:start + 2048]
        d = torch.cdist(rows, pooled)  # (rows, N + M)
        d[torch.arange(len(rows)), torch.arange(start, start + len(rows))] = float("inf")  # leave one out
        right += int((labels[d.argmin(1)] == labels[start:start + len(rows)]).sum())
    return right / len(pooled)


def same_distribution_accuracy(n: int, m: int) -> float:
    """E[:func:`nearest_neighbour_accuracy`] for n and m points from one continuous distribution.

    (n(n − 1) + m(m − 1)) / ((n + m)(n + m − 1)): a point's nearest other point is one of
    the n + m − 1 others, each equally likely, and of its own set with probability
    (own − 1)/(n + m − 1).
    """
    n = check_int(n, "n", "same_distribution_accuracy")
    m = check_int(m, "m", "same_distribution_accuracy")
    if n + m < 3:
        _refuse("m", "same_distribution_accuracy", "an int with n + m >= 3", repr(m))
    return (n * (n - 1) + m * (m - 1)) / ((n + m) * (n + m - 1))
