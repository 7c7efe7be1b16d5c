"""MNIST-1D, generated locally (UDL §8.1, fig. 8.1).

MNIST-1D (Greydanus & Kalhor) is the book's small benchmark: ten 1D templates,
one per digit, padded, scaled, translated, sheared and noised into sequences of
length 40. The ``mnist1d`` package builds it with ``make_dataset``; udl calls that
function (never the package's download path), stores the arrays in an ``.npz``
file (no pickle) and loads them from there next time.

The book's default: 5,000 sequences split 4,000 for training and 1,000 for test,
length 40, ten classes, seed 42 (``mnist1d.get_dataset_args``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from udl.cache import atomic_write, data_dir
from udl.validate import check_float, check_int

_FORMAT = 1  # bump when the stored layout changes: old files are then ignored
_KEYS = ("x_train", "y_train", "x_test", "y_test", "t")


@dataclass(frozen=True)
class MNIST1D:
    """The MNIST-1D arrays (NumPy).

    Attributes:
        x_train: training sequences, (N_train, L) float32 (L = 40 by default).
        y_train: training labels, (N_train,) int64 in 0..9.
        x_test: test sequences, (N_test, L) float32.
        y_test: test labels, (N_test,) int64.
        t: the positions of the L samples, (L,) float32 (for plotting).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    t: np.ndarray

    def __post_init__(self):
        for name in _KEYS:
            value = getattr(self, name)
            if not isinstance(value, np.ndarray):
                raise TypeError(f"The {name!r} parameter of MNIST1D must be a numpy array. Got {value!r} instead.")
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.ndim != 2 or y.shape != x.shape[:1]:
                raise ValueError(f"The 'y_{split}' parameter of MNIST1D must hold one label per row of "
                                 f"x_{split} {x.shape}. Got shape {y.shape} instead.")

    def tensors(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
        """``(x_train, y_train, x_test, y_test)`` as torch tensors on ``device``."""
        return tuple(torch.as_tensor(getattr(self, k), device=device)
                     for k in ("x_train", "y_train", "x_test", "y_test"))


def split_sizes(num_samples: int = 5000, train_split: float = 0.8) -> tuple[int, int]:
    """``(n_train, n_test)``: how ``load_mnist1d`` splits ``num_samples`` sequences.

    The generator makes ``num_samples // 10`` sequences per class and trains on the first
    ``train_split`` of them: ``split_sizes(5000) == (4000, 1000)``, ``split_sizes(105) == (80, 20)``.
    """
    total = num_samples // 10 * 10
    n_train = int(total * train_split)
    return n_train, total - n_train


def dataset_args(num_samples: int = 5000, train_split: float = 0.8, seed: int = 42, **overrides) -> dict:
    """The arguments of ``mnist1d``'s ``make_dataset``: its defaults with these changes.

    Raises ValueError for a key that ``mnist1d.get_dataset_args`` does not know.
    """
    from mnist1d.data import get_dataset_args

    owner = "load_mnist1d"
    check_int(num_samples, "num_samples", owner, minimum=10)  # at least one sequence per class
    check_float(train_split, "train_split", owner, low=0, high=1, low_open=True, high_open=True)
    check_int(seed, "seed", owner, minimum=0)
    args = get_dataset_args(as_dict=True)
    args.pop("url", None)  # udl never downloads
    unknown = sorted(set(overrides) - set(args))
    if unknown:
        raise ValueError(f"The {unknown[0]!r} parameter of {owner} is not an MNIST-1D argument; "
                         f"choose from {', '.join(sorted(args))}. Got {overrides[unknown[0]]!r} instead.")
    args.update(overrides, num_samples=num_samples, train_split=train_split, seed=seed)
    n_train, n_test = split_sizes(num_samples, train_split)
    if n_train < 1 or n_test < 1:
        raise ValueError(f"The 'train_split' parameter of {owner} must leave at least one training and one "
                         f"test sequence. Got {train_split!r} instead.")
    return args


def _generate(args: dict) -> dict[str, np.ndarray]:
    """Run ``mnist1d``'s ``make_dataset`` without touching the caller's global RNGs."""
    from mnist1d.data import make_dataset
    from mnist1d.utils import ObjectView

    np_state, py_state = np.random.get_state(), random.getstate()  # make_dataset calls np.random.seed
    try:
        data = make_dataset(ObjectView(dict(args)))
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {"x_train": np.asarray(data["x"], np.float32), "y_train": np.asarray(data["y"], np.int64),
            "x_test": np.asarray(data["x_test"], np.float32), "y_test": np.asarray(data["y_test"], np.int64),
            "t": np.asarray(data["t"], np.float32)}


def cache_path(args: dict, cache_dir: str | os.PathLike | None = None) -> Path:
    """The file that stores the dataset made with ``args``: its name holds their hash."""
    from importlib.metadata import version

    if not isinstance(args, dict) or "num_samples" not in args:
        raise TypeError(f"The 'args' parameter of cache_path must be a dict from dataset_args. Got {args!r} instead.")
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"The 'cache_dir' parameter of cache_path must be a path. Got {cache_dir!r} instead.")
    blob = json.dumps({"args": args, "format": _FORMAT, "mnist1d": version("mnist1d")}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return Path(cache_dir if cache_dir is not None else data_dir()) / f"mnist1d-{digest}.npz"


def _read(path: Path, args: dict) -> dict[str, np.ndarray] | None:
    """The stored arrays, or None when the file is missing, damaged or for other arguments."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if json.loads(str(data["args"])) != json.loads(json.dumps(args)):
                return None
            arrays = {k: data[k] for k in _KEYS}
    except Exception:  # noqa: BLE001 - any damage means: generate again
        return None
    n_train, n_test = arrays["x_train"].shape[0], arrays["x_test"].shape[0]
    ok = (arrays["x_train"].ndim == 2 and arrays["y_train"].shape == (n_train,)
          and arrays["y_test"].shape == (n_test,) and arrays["x_test"].shape[1:] == arrays["x_train"].shape[1:]
          and (n_train, n_test) == split_sizes(args["num_samples"], args["train_split"])
          and np.isfinite(arrays["x_train"]).all() and np.isfinite(arrays["x_test"]).all())
    return arrays if ok else None


def _write(path: Path, args: dict, arrays: dict[str, np.ndarray]) -> None:
    """Store atomically: write a temporary file beside ``path``, then rename it."""
    buffer = io.BytesIO()
    np.savez(buffer, args=np.array(json.dumps(args, sort_keys=True)), **arrays)
    atomic_write(path, buffer.getvalue())


def load_mnist1d(num_samples: int = 5000, train_split: float = 0.8, seed: int = 42,
                 cache_dir: str | os.PathLike | None = None, **overrides) -> MNIST1D:
    """Generate (or load from the cache) the MNIST-1D dataset (UDL §8.1).

    The first call runs ``mnist1d.data.make_dataset`` with the package's default
    arguments changed by these ones, and stores the arrays in
    ``<cache_dir>/mnist1d-<hash of the arguments>.npz`` (written atomically); later
    calls with the same arguments read that file. A damaged file is generated
    again. NumPy's and Python's global random states are restored afterwards, so
    loading does not disturb the caller's random numbers.

    Args:
        num_samples: sequences in all, default 5000 (a multiple of 10: the
            generator makes ``num_samples // 10`` per class).
        train_split: the fraction used for training, default 0.8 (4,000 / 1,000).
        seed: the generator's seed, default 42 (as the book).
        cache_dir: where to store the file; default ``$UDL_DATA_DIR`` or
            ``~/.cache/udl/data``.
        **overrides: other ``mnist1d`` arguments (``template_len``, ``padding``,
            ``scale_coeff``, ``max_translation``, ``corr_noise_scale``,
            ``iid_noise_scale``, ``shear_scale``, ``shuffle_seq``, ``final_seq_length``).

    Returns:
        :class:`MNIST1D` of NumPy arrays; ``.tensors()`` gives torch tensors.

    Shape:
        x_train: (N_train, 40) float32; y_train: (N_train,) int64; likewise for test.

    Example:
        >>> data = load_mnist1d(num_samples=100)
        >>> data.x_train.shape, data.x_test.shape
        ((80, 40), (20, 40))
    """
    args = dataset_args(num_samples, train_split, seed, **overrides)
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"The 'cache_dir' parameter of load_mnist1d must be a path. Got {cache_dir!r} instead.")
    path = cache_path(args, cache_dir)
    arrays = _read(path, args)
    if arrays is None:
        arrays = _generate(args)
        try:
            _write(path, args, arrays)
        except OSError:  # a read-only cache costs time, never the result
            pass
    return MNIST1D(**arrays)


__all__ = ["MNIST1D", "load_mnist1d", "dataset_args", "split_sizes", "cache_path"]
