"""Checkpoints: written atomically, loaded safely, with every random state.

A checkpoint is a plain dict saved with ``torch.save`` through
:func:`udl.cache.atomic_save`: written to a temporary file in the same folder, flushed
to the disk and then renamed over the old one, so a crash (or a full disk) while
writing leaves the previous checkpoint intact, never a half-written file.

It is loaded with ``torch.load(..., weights_only=True)``, which only unpickles
tensors and plain Python containers and numbers, never arbitrary objects: a
checkpoint cannot run code. For that the random states are stored as tensors and
lists (NumPy's key array becomes a list of ints).
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from udl.cache import atomic_save


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` atomically: temporary file, fsync, rename.

    Args:
        state: what to save (tensors, dicts, lists, numbers, strings).
        path: the checkpoint file; its folder is created if missing.

    Example:
        >>> save_checkpoint({"step": 10, "model": model.state_dict()}, "run/last.pt")
    """
    atomic_save(state, path, fsync=True)  # fsync: the bytes are on disk before the name points at them


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by ``save_checkpoint`` onto the CPU (``weights_only``)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def rng_state() -> dict:
    """The state of every global random generator a training step may draw from."""
    np_state = np.random.get_state()  # ("MT19937", key array, pos, has_gauss, gauss)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    """Restore the generators saved by ``rng_state``."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
