"""Honest measures of generated 8x8 digits (UDL §14.6 and the evaluation of §17-§18).

A generative model is judged by what it samples, next to two references: held-out
real digits (the *floor*: what a perfect model that generalises would score) and a
trivial model (the *ceiling*: independent per-pixel Gaussians fitted to the training
digits, clipped to [0, 1]). The measures:

- :func:`digit_classifier` and :func:`digit_features`: an independent small CNN trained
  once on real training digits (cached on disk through :func:`udl.cache.trained`), and
  its penultimate layer as a feature space. It is no model under evaluation.
- :func:`frechet_distance`: the Fréchet distance between Gaussians fitted to two sets
  of features (the FID formula, Heusel et al. 2017)::

      d² = ‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2})

- :func:`precision_recall`: the share of samples inside the real data's k-nearest-
  neighbour manifold, and of real images inside the samples' (Kynkäänniemi et al. 2019).
- :func:`class_share`: the share of samples the classifier recognises as the class asked for.
- :func:`memorisation`: are samples closer to their nearest training image than held-out
  real images are to theirs? A test that fails for a model that copies training images.
- :func:`evaluate_digits`: all of them, for the model, the floor and the ceiling;
  :func:`evaluation_table` prints them.

Images are float tensors ``(B, 1, 8, 8)`` (or ``(B, 8, 8)``, ``(B, 64)``, NumPy arrays too)
with values in [0, 1]; values outside are clipped, as an image would be stored.
Every generative model of udl trains on ``load_digits("train", seed=0)``, and so does
the classifier: the held-out images of that split are unseen by all of them.

Example::

    >>> x, y = load_digits("test", seed=0)
    >>> class_share(x, y)                                   # the classifier's held-out accuracy
    0.994...
    >>> frechet_distance(digit_features(x[:180]), digit_features(x[180:]))   # two halves of real digits
    10.6...
    >>> print(evaluation_table(evaluate_digits(trivial_digits(400, generator=1))))
    row               count  Fréchet  precision  recall  class share  memorisation
    model               400    ...
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from udl.data.images import load_digits
from udl.nn.init import he_init, initialised_from
from udl.validate import _refuse, _shown, as_generator, check_float, check_int

__all__ = ["DigitClassifier", "digit_classifier", "digit_features", "frechet_distance", "precision_recall",
           "class_share", "memorisation", "trivial_digits", "evaluate_digits", "evaluation_table"]

SPLIT_SEED = 0  # every model of udl trains on load_digits("train", seed=0); held out: load_digits("test", seed=0)
N_CLASSES = 10
N_FEATURES = 64  # width of the classifier's penultimate layer


# --------------------------------------------------------------------------- images in, checked
def _as_images(images, name: str, owner: str, *, min_count: int = 1) -> torch.Tensor:
    """``images`` as a float32 tensor (B, 1, 8, 8) clipped to [0, 1] (from (B, 1, 8, 8), (B, 8, 8) or (B, 64))."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.asarray(images, dtype=np.float32))
    if not isinstance(images, torch.Tensor):
        _refuse(name, owner, "a tensor or array of images (B, 1, 8, 8), (B, 8, 8) or (B, 64)", _shown(images),
                TypeError)
    if not images.dtype.is_floating_point:
        _refuse(name, owner, "a floating-point tensor of images", f"dtype {images.dtype}", TypeError)
    shape = tuple(images.shape)
    if shape[1:] not in ((1, 8, 8), (8, 8), (64,)) or shape[0] < min_count:
        wanted = "images of shape (B, 1, 8, 8), (B, 8, 8) or (B, 64)"
        _refuse(name, owner, wanted + (f" with B >= {min_count}" if min_count > 1 else ""), f"shape {shape}")
    images = images.detach().to("cpu", torch.float32).reshape(-1, 1, 8, 8)  # (B, 1, 8, 8)
    if not torch.isfinite(images).all():
        _refuse(name, owner, "finite images", "a NaN or infinite pixel")
    return images.clamp(0.0, 1.0)


def _as_features(features, name: str, owner: str, *, min_count: int = 2) -> np.ndarray:
    """``features`` (N, F) as float64 NumPy, finite, with at least ``min_count`` rows."""
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    if not isinstance(features, np.ndarray) or features.dtype.kind not in "fiu":
        _refuse(name, owner, "a 2D array or tensor of features (N, F)", _shown(features), TypeError)
    if features.ndim != 2 or features.shape[0] < min_count or features.shape[1] < 1:
        _refuse(name, owner, f"a 2D array of features (N, F) with N >= {min_count}", f"shape {features.shape}")
    features = features.astype(np.float64)
    if not np.isfinite(features).all():
        _refuse(name, owner, "finite features", "a NaN or infinite entry")
    return features


# --------------------------------------------------------------------------- the independent classifier
class DigitClassifier(nn.Module):
    """A small CNN for 8x8 digits: the judge of generated samples, not a model under evaluation.

    conv 3x3 (16) → ReLU → conv 3x3 (32) → ReLU → max-pool 2 → linear (64) → ReLU → linear (10).
    The 64 values before the last layer are the features of :func:`digit_features`.

    Args:
        generator: the initial weights (He, UDL §7.5): a ``torch.Generator`` or an int seed.

    Shape:
        ``(B, 1, 8, 8) -> (B, 10)`` logits; :meth:`features`: ``(B, 1, 8, 8) -> (B, 64)``.
    """

    def __init__(self, *, generator: torch.Generator | int | None = None):
        super().__init__()
        generator = as_generator(generator, "DigitClassifier")
        with initialised_from(self, generator):
            self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.hidden = nn.Linear(32 * 4 * 4, N_FEATURES)
            self.out = nn.Linear(N_FEATURES, N_CLASSES)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """He initialisation of every layer: weights N(0, 2/fan_in), biases 0."""
        he_init(self, generator)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer, ``(B, 1, 8, 8) -> (B, 64)``."""
        h = torch.relu(self.conv1(x))  # (B, 16, 8, 8)
        h = torch.relu(self.conv2(h))  # (B, 32, 8, 8)
        h = nn.functional.max_pool2d(h, 2).flatten(1)  # (B, 32, 4, 4) -> (B, 512)
        return torch.relu(self.hidden(h))  # (B, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))  # (B, 10)


_TRAINING = {"steps": 800, "batch_size": 64, "lr": 3e-3, "weight_decay": 1e-4, "floor": 0.02, "shift": 1,
             "seed": 0}


def _shifted(x: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by up to ``shift`` pixels in each direction (zeros fill in): a cheap augmentation
    so that the judge does not rely on the exact position of a stroke."""
    padded = nn.functional.pad(x[:, 0], (shift,) * 4)  # (B, 8 + 2s, 8 + 2s)
    dy, dx = torch.randint(0, 2 * shift + 1, (2, len(x)), generator=generator)
    rows = (dy[:, None] + torch.arange(8))[:, :, None]  # (B, 8, 1)
    cols = (dx[:, None] + torch.arange(8))[:, None, :]  # (B, 1, 8)
    return padded[torch.arange(len(x))[:, None, None], rows, cols][:, None]  # (B, 1, 8, 8)


class _ShiftedInputs(nn.Module):
    """The classifier behind a random shift of each training batch (training only)."""

    def __init__(self, net: nn.Module, shift: int, generator: torch.Generator):
        super().__init__()
        self.net, self.shift, self.generator = net, shift, generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(_shifted(x.cpu(), self.shift, self.generator).to(x.device))


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


def _train_classifier(model: DigitClassifier) -> dict:
    from udl.train.recipes import fit_adamw

    x, y = (torch.from_numpy(a) for a in load_digits("train", seed=SPLIT_SEED, flat=False))
    x_test, y_test = (torch.from_numpy(a) for a in load_digits("test", seed=SPLIT_SEED, flat=False))
    x, x_test = x[:, None], x_test[:, None]  # (N, 8, 8) -> (N, 1, 8, 8)
    device = next(model.parameters()).device
    shifts = torch.Generator().manual_seed(_TRAINING["seed"])
    losses = fit_adamw(_ShiftedInputs(model, _TRAINING["shift"], shifts), (x, y), nn.functional.cross_entropy,
                       steps=_TRAINING["steps"], lr=_TRAINING["lr"], weight_decay=_TRAINING["weight_decay"],
                       floor=_TRAINING["floor"], batch_size=_TRAINING["batch_size"], seed=_TRAINING["seed"],
                       device=device, progress=False)
    model.eval()
    return {"train_accuracy": _accuracy(model, x.to(device), y.to(device)),
            "test_accuracy": _accuracy(model, x_test.to(device), y_test.to(device)),
            "final_loss": float(np.mean(losses[-100:]))}


def digit_classifier(*, device: str | torch.device = "cpu") -> DigitClassifier:
    """The independent digit classifier, trained once per machine on ``load_digits("train", seed=0)``.

    A :class:`DigitClassifier` trained with AdamW (800 steps of 64 images, each
    shifted by up to one pixel) in a few seconds on one CPU core, then kept on disk by
    :func:`udl.cache.trained`: later calls, in any process, load it.

    Args:
        device: where the returned model lives (and is trained the first time). Default: "cpu".

    Returns:
        a fresh copy in eval mode. Its ``record`` attribute is the training record: the
        ``"test_accuracy"`` on the 359 held-out digits (0.994) and the ``"train_accuracy"``.

    Example::

        >>> digit_classifier().record["test_accuracy"]
        0.994...
    """
    from udl.cache import trained

    model, record = trained("digit-classifier", dict(_TRAINING), lambda: DigitClassifier(generator=_TRAINING["seed"]),
                            _train_classifier, sources=[__file__], device=device)
    model.record = record
    return model


_JUDGE: dict = {}  # one CPU copy of the classifier per process, for the measures below


def _judge() -> DigitClassifier:
    if "cpu" not in _JUDGE:
        _JUDGE["cpu"] = digit_classifier(device="cpu")
    return _JUDGE["cpu"]


def digit_features(images, *, batch_size: int = 4096) -> np.ndarray:
    """The independent classifier's penultimate-layer features of ``images``.

    Args:
        images: ``(B, 1, 8, 8)``, ``(B, 8, 8)`` or ``(B, 64)`` values in [0, 1].
        batch_size: images per forward pass. Default: 4096.

    Returns:
        float64 NumPy array ``(B, 64)``.
    """
    x = _as_images(images, "images", "digit_features")
    batch_size = check_int(batch_size, "batch_size", "digit_features")
    model = _judge()
    with torch.no_grad():
        parts = [model.features(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat(parts).double().numpy()  # (B, 64)


def class_share(images, classes) -> float:
    """The share of ``images`` that the independent classifier assigns to the class asked for.

    Args:
        images: ``(B, 1, 8, 8)``, ``(B, 8, 8)`` or ``(B, 64)`` values in [0, 1].
        classes: one class 0-9 for all images, or one per image (a sequence, array or tensor of B ints).

    Returns:
        The share in [0, 1], argmax of the logits against ``classes``.
    """
    x = _as_images(images, "images", "class_share")
    wanted = _as_classes(classes, len(x), "class_share")
    with torch.no_grad():
        predicted = _judge()(x).argmax(1)
    return float((predicted == wanted).double().mean())


def _as_classes(classes, count: int, owner: str) -> torch.Tensor:
    if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
        classes = [int(classes)] * count
    try:
        wanted = torch.as_tensor(np.asarray(classes.cpu() if isinstance(classes, torch.Tensor) else classes))
    except (TypeError, ValueError):
        _refuse("classes", owner, "an int 0-9 or one int 0-9 per image", _shown(classes), TypeError)
    if wanted.dtype.is_floating_point or wanted.dtype == torch.bool or wanted.dtype.is_complex:
        _refuse("classes", owner, "an int 0-9 or one int 0-9 per image", f"dtype {wanted.dtype}", TypeError)
    if wanted.shape != (count,) or (count and (wanted.min() < 0 or wanted.max() >= N_CLASSES)):
        _refuse("classes", owner, f"an int 0-9 or {count} ints 0-9 (one per image)",
                f"shape {tuple(wanted.shape)}" if wanted.shape != (count,) else f"{wanted.min()}..{wanted.max()}")
    return wanted.long()


# --------------------------------------------------------------------------- distances between sets of features
def _covariance_sqrt_trace(sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """tr (Σ_a Σ_b)^{1/2} for symmetric positive semi-definite Σ_a, Σ_b.

    Σ_a Σ_b is not symmetric, but it is similar to S Σ_b S with S = Σ_a^{1/2}
    (S⁻¹ (S S Σ_b) S = S Σ_b S), which is: its eigenvalues are real and non-negative,
    and the trace of the square root is the sum of their square roots. Two symmetric
    eigendecompositions instead of a general matrix square root (no complex round-off).
    """
    values, vectors = np.linalg.eigh(sigma_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T  # Σ_a^{1/2}
    middle = root_a @ sigma_b @ root_a  # (F, F), symmetric PSD
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum())


def frechet_distance(features_a, features_b) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of features (the FID formula).

    The squared 2-Wasserstein distance between N(μ_a, Σ_a) and N(μ_b, Σ_b), the means
    and covariances (unbiased, divided by N − 1) of the two sets::

        d² = ‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2})

    With the classifier's features (:func:`digit_features`) it is the FID of 8x8 digits.
    It depends on the number of points (the covariances of few points are noisy): compare
    sets of equal size only.

    Args:
        features_a: ``(N_a, F)`` array or tensor, N_a >= 2.
        features_b: ``(N_b, F)``, N_b >= 2.

    Returns:
        d² >= 0, a float (0 for two identical sets).
    """
    a = _as_features(features_a, "features_a", "frechet_distance")
    b = _as_features(features_b, "features_b", "frechet_distance")
    if a.shape[1] != b.shape[1]:
        _refuse("features_b", "frechet_distance", f"features of the same width F = {a.shape[1]} as features_a",
                f"shape {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    sigma_a, sigma_b = np.cov(a, rowvar=False).reshape(a.shape[1], -1), np.cov(b, rowvar=False).reshape(
        b.shape[1], -1)  # (F, F)
    d2 = ((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2 * _covariance_sqrt_trace(
        sigma_a, sigma_b)
    return float(max(d2, 0.0))


def _kth_neighbour_radius(points: np.ndarray, k: int) -> np.ndarray:
    """Distance of each point to its k-th nearest other point of the same set."""
    d = torch.cdist(torch.from_numpy(points), torch.from_numpy(points)).numpy()  # (N, N)
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def precision_recall(sample_features, real_features, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of samples against real data.

    Each real point φ_r gets a ball whose radius is the distance to its k-th nearest
    other real point; their union approximates the manifold of real data. Precision is
    the share of samples inside it; recall is the same with the roles swapped: the share
    of real points inside the union of the samples' k-nearest-neighbour balls::

        precision = (1/N_s) Σ_s 1[∃ r: ‖φ_s − φ_r‖ ≤ NN_k(φ_r)]
        recall    = (1/N_r) Σ_r 1[∃ s: ‖φ_r − φ_s‖ ≤ NN_k(φ_s)]

    Low precision: samples that look like no real image. Low recall: real images the
    model never produces (mode dropping).

    Args:
        sample_features: ``(N_s, F)``, N_s > k.
        real_features: ``(N_r, F)``, N_r > k.
        k: the neighbour that sets each radius. Default: 3 (the paper's choice).

    Returns:
        ``(precision, recall)``, each in [0, 1].
    """
    k = check_int(k, "k", "precision_recall")
    s = _as_features(sample_features, "sample_features", "precision_recall", min_count=k + 1)
    r = _as_features(real_features, "real_features", "precision_recall", min_count=k + 1)
    if s.shape[1] != r.shape[1]:
        _refuse("real_features", "precision_recall", f"features of the same width F = {s.shape[1]} as "
                "sample_features", f"shape {r.shape}")
    radius_s, radius_r = _kth_neighbour_radius(s, k), _kth_neighbour_radius(r, k)
    d = torch.cdist(torch.from_numpy(s), torch.from_numpy(r)).numpy()  # (N_s, N_r)
    precision = (d <= radius_r[None, :]).any(axis=1).mean()  # sample s inside some real ball
    recall = (d <= radius_s[:, None]).any(axis=0).mean()  # real point r inside some sample ball
    return float(precision), float(recall)


# --------------------------------------------------------------------------- memorisation
def _nearest_distance(x: torch.Tensor, train: torch.Tensor) -> np.ndarray:
    """Euclidean pixel distance of each image of ``x`` to its nearest image of ``train``."""
    a, b = x.reshape(len(x), -1).double(), train.reshape(len(train), -1).double()  # (N, 64), (M, 64)
    return torch.cdist(a, b).min(dim=1).values.numpy()


def memorisation(samples, train, held_out, *, quantile: float = 0.05, alpha: float = 1e-3) -> dict:
    """Are samples closer to the training images than unseen real images are? (pixel space)

    For every sample, the distance d_s to its nearest training image; for every held-out
    real image, the same distance d_h. A model that draws fresh images like the held-out
    ones makes the d_s and d_h exchangeable: among the K = ⌈q (N_s + N_h)⌉ smallest of all
    of them, the number X of samples is hypergeometric, about K N_s / (N_s + N_h). A model
    that copies training images (copies lie at distance 0) crowds that closest share with
    samples. The check fails when X is improbably large for exchangeable distances::

        p = Pr(X' >= X),  X' ~ Hypergeometric(N_s + N_h, N_s, K);   passes  <=>  p >= alpha

    (ties between a sample and a held-out image count the held-out one as closer). It
    catches a model that copies a tenth of its samples or more (at 180 samples and 179
    held-out images, 50 of 50 trials); real held-out digits fail it about once in a
    thousand tries, by construction.

    Args:
        samples: the generated images, ``(N_s, 1, 8, 8)`` (or ``(N_s, 64)``...), N_s >= 1.
        train: the images the model was trained on.
        held_out: real images the model never saw, N_h >= 2.
        quantile: q, the share of closest distances looked at, in (0, 0.5]. Default: 0.05.
        alpha: the test's level, in (0, 0.5). Default: 0.001.

    Returns:
        a dict: ``"sample_distances"`` (N_s,) and ``"held_out_distances"`` (N_h,) NumPy arrays;
        ``"threshold"`` (the K-th smallest distance); ``"share_closer"`` (X / N_s, the share of
        samples among the K closest), ``"expected"`` (K / (N_s + N_h), its value for fresh
        images) and ``"allowed"`` (the largest share that passes); ``"p_value"``;
        ``"passes"`` (bool); the medians ``"median_sample"`` and ``"median_held_out"``; and
        ``"closer_than_any_held_out"``, the number of samples nearer a training image than
        every held-out image is (about N_s / (N_h + 1) for fresh images).
    """
    from scipy.stats import hypergeom

    owner = "memorisation"
    s = _as_images(samples, "samples", owner)
    t = _as_images(train, "train", owner)
    h = _as_images(held_out, "held_out", owner, min_count=2)
    q = check_float(quantile, "quantile", owner, low=0.0, high=0.5, low_open=True)
    alpha = check_float(alpha, "alpha", owner, low=0.0, high=0.5, low_open=True, high_open=True)
    d_s, d_h = _nearest_distance(s, t), _nearest_distance(h, t)
    n_s, total = len(d_s), len(d_s) + len(d_h)
    k = math.ceil(q * total)
    pooled = np.concatenate([d_h, d_s])
    is_sample = np.r_[np.zeros(len(d_h), bool), np.ones(n_s, bool)]
    closest = np.lexsort((is_sample, pooled))[:k]  # by distance; at a tie the held-out image first
    x = int(is_sample[closest].sum())
    p_value = float(hypergeom.sf(x - 1, total, n_s, k))  # Pr(X' >= x)
    allowed = next(c for c in range(k, -1, -1) if c == 0 or hypergeom.sf(c - 1, total, n_s, k) >= alpha)
    return {"sample_distances": d_s, "held_out_distances": d_h, "threshold": float(pooled[closest[-1]]),
            "share_closer": x / n_s, "expected": k / total, "allowed": allowed / n_s, "p_value": p_value,
            "passes": bool(p_value >= alpha), "median_sample": float(np.median(d_s)),
            "median_held_out": float(np.median(d_h)), "closer_than_any_held_out": int((d_s < d_h.min()).sum())}


# --------------------------------------------------------------------------- the ceiling and the whole table
def trivial_digits(n: int, *, classes=None, generator: torch.Generator | int | None = 0) -> torch.Tensor:
    """The ceiling: digits from independent per-pixel Gaussians fitted to the training digits, clipped to [0, 1].

    Each pixel is drawn on its own from N(mean, variance) of that pixel over
    ``load_digits("train", seed=0)`` (over the digits of the class asked for, when
    ``classes`` is given): blurry averages with speckle, no strokes.

    Args:
        n: how many images.
        classes: None (all digits), one class 0-9, or n classes.
        generator: a ``torch.Generator`` or an int seed. Default: 0.

    Returns:
        float32 tensor ``(n, 1, 8, 8)``.
    """
    owner = "trivial_digits"
    n = check_int(n, "n", owner)
    generator = as_generator(generator, owner, optional=False)
    x, y = (torch.from_numpy(a) for a in load_digits("train", seed=SPLIT_SEED))
    x = x.double()
    if classes is None:
        mean, sd = x.mean(0).expand(n, -1), x.std(0).expand(n, -1)  # (n, 64)
    else:
        wanted = _as_classes(classes, n, owner)
        means = torch.stack([x[y == c].mean(0) for c in range(N_CLASSES)])  # (10, 64)
        sds = torch.stack([x[y == c].std(0) for c in range(N_CLASSES)])
        mean, sd = means[wanted], sds[wanted]  # (n, 64)
    noise = torch.randn(mean.shape, generator=generator, dtype=torch.float64)
    return (mean + sd * noise).clamp(0.0, 1.0).float().reshape(n, 1, 8, 8)


def _row(images: torch.Tensor, classes, train: torch.Tensor, train_features: np.ndarray, held_out: torch.Tensor,
         k: int) -> dict:
    features = digit_features(images)
    precision, recall = precision_recall(features, train_features, k=k)
    check = memorisation(images, train, held_out)
    return {"frechet": frechet_distance(features, train_features), "precision": precision, "recall": recall,
            "class_share": None if classes is None else class_share(images, classes),
            "memorisation_share": check["share_closer"], "memorisation_p": check["p_value"],
            "memorisation_passes": check["passes"],
            "median_train_distance": check["median_sample"], "count": len(images)}


def evaluate_digits(samples, *, classes=None, seed: int = 0, k: int = 3) -> dict:
    """Every measure for generated digits, beside held-out real digits (floor) and the trivial model (ceiling).

    The three rows are measured at one count m = min(N, 359) (the held-out digits
    number 359): the Fréchet distance depends on the count. The model's row uses a
    seeded subset of m samples when there are more (class_share uses all of them);
    the floor is m held-out real digits, the ceiling m trivial digits (per class when
    ``classes`` is given). The reference for the Fréchet distance and precision/recall
    is the 1,438 training digits; the memorisation check compares with all 359 held-out
    ones (for the floor row it compares held-out digits with themselves: it passes by
    construction).

    Args:
        samples: N generated images, ``(N, 1, 8, 8)`` (or ``(N, 8, 8)``, ``(N, 64)``), N >= k + 1.
        classes: None, or the class each sample was asked to be (an int for all, or N ints).
        seed: seeds the subset of samples and held-out digits, and the trivial model. Default: 0.
        k: the neighbour of :func:`precision_recall`. Default: 3.

    Returns:
        ``{"model": row, "floor": row, "ceiling": row, "classifier_accuracy": float}``, each row a
        dict with ``"frechet"``, ``"precision"``, ``"recall"``, ``"class_share"`` (None without
        ``classes``), ``"memorisation_share"``, ``"memorisation_p"``, ``"memorisation_passes"``,
        ``"median_train_distance"`` and ``"count"``.
    """
    owner = "evaluate_digits"
    k = check_int(k, "k", owner)
    x = _as_images(samples, "samples", owner, min_count=k + 1)
    wanted = None if classes is None else _as_classes(classes, len(x), owner)
    seed = check_int(seed, "seed", owner, minimum=0)
    train = torch.from_numpy(load_digits("train", seed=SPLIT_SEED)[0])
    x_held, y_held = (torch.from_numpy(a) for a in load_digits("test", seed=SPLIT_SEED))
    m = min(len(x), len(x_held))
    rng = np.random.default_rng(seed)
    pick = torch.from_numpy(np.sort(rng.permutation(len(x))[:m]))
    pick_held = torch.from_numpy(np.sort(rng.permutation(len(x_held))[:m]))
    train_features = digit_features(train)
    model_row = _row(x[pick], None, train, train_features, x_held, k)
    model_row["class_share"] = None if wanted is None else class_share(x, wanted)
    model_row["count"] = len(x)
    floor_classes = None if wanted is None else y_held[pick_held]
    ceiling_classes = None if wanted is None else wanted[pick]
    return {"model": model_row,
            "floor": _row(x_held[pick_held], floor_classes, train, train_features, x_held, k),
            "ceiling": _row(trivial_digits(m, classes=ceiling_classes, generator=seed), ceiling_classes, train,
                            train_features, x_held, k),
            "classifier_accuracy": _judge().record["test_accuracy"]}


def evaluation_table(result: dict) -> str:
    """The rows of :func:`evaluate_digits` as a plain-text table (for a figure's text or a report).

    Example::

        >>> print(evaluation_table(evaluate_digits(samples, classes=labels)))
        row               count  Fréchet  precision  recall  class share  memorisation
        model               500    12.31      0.853   0.802        0.968  passes (p = 0.43)
        ...
    """
    if not isinstance(result, dict) or not all(isinstance(result.get(key), dict)
                                               for key in ("model", "floor", "ceiling")):
        _refuse("result", "evaluation_table", "the dict that evaluate_digits returns", _shown(result), TypeError)
    lines = [f"{'row':<16}{'count':>7}{'Fréchet':>9}{'precision':>11}{'recall':>8}{'class share':>13}  memorisation"]
    for key, name in (("model", "model"), ("floor", "held-out real"), ("ceiling", "trivial model")):
        row = result[key]
        share = "-" if row["class_share"] is None else f"{row['class_share']:.3f}"
        verdict = "passes" if row["memorisation_passes"] else "FAILS"
        lines.append(f"{name:<16}{row['count']:>7}{row['frechet']:>9.2f}{row['precision']:>11.3f}{row['recall']:>8.3f}"
                     f"{share:>13}  {verdict} (p = {row['memorisation_p']:.2g})")
    return "\n".join(lines)
