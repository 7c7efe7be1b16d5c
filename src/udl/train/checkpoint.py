"""Checkpoints: written atomically, loaded safely, with every random state.

A checkpoint is a plain dict saved with ``torch.save`` through
:func:`udl.cache.atomic_save`: written to a temporary file in the same folder, flushed
to the disk and then renamed over the old one, so a crash (or a full disk) while
writing leaves the previous checkpoint intact, never a half-written file.

It is loaded with ``torch.load(..., weights_only=True)``, which only unpickles
tensors and plain Python containers and numbers, never arbitrary objects: a
checkpoint cannot run code. For that the random states are stored as tensors and
lists (NumPy's key array becomes a list of ints). A file that is missing, empty,
cut short, not written by ``torch.save`` or holding other objects is refused with
one line naming it and what is wrong.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from udl.cache import atomic_save

_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6 is a zip archive


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` atomically: temporary file, fsync, rename.

    Args:
        state: what to save (tensors, dicts, lists, numbers, strings).
        path: the checkpoint file; its folder is created if missing.

    Example:
        >>> save_checkpoint({"step": 10, "model": model.state_dict()}, "run/last.pt")
    """
    atomic_save(state, path, fsync=True)  # fsync: the bytes are on disk before the name points at them


def check_writable(path: str | os.PathLike, name: str, owner: str) -> Path:
    """Refuse, before any work, a file path that :func:`save_checkpoint` could not write.

    The path must not be a folder, no folder above it may be a file, and its folder
    must take a new file: the folder is created if missing and a nameless temporary
    file is made in it and dropped (the only test that sees permissions, read-only
    disks and full quotas alike).

    Args:
        path: the file to be written later.
        name, owner: the argument and the function it goes to, for the message.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: one line naming ``path`` and why it cannot be written.

    Example::

        >>> check_writable("/etc/passwd/run.pt", "checkpoint_path", "fit")
        Traceback (most recent call last):
        ValueError: The 'checkpoint_path' parameter of fit must be a file udl can write. Got '/etc/passwd/run.pt', under the file '/etc/passwd', instead.
    """
    path = Path(path)
    wanted = f"The {name!r} parameter of {owner} must be a file udl can write. Got {str(path)!r}"
    if path.is_dir():
        raise ValueError(f"{wanted}, a folder, instead.")
    above = path.parent
    while not above.exists() and above != above.parent:  # the nearest thing above that exists
        above = above.parent
    if not above.is_dir():
        raise ValueError(f"{wanted}, under the file {str(above)!r}, instead.")
    folder, doing = path.parent, "written" if path.parent.exists() else "created"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:  # its strerror only: the message names no temporary file
        raise ValueError(f"{wanted}, whose folder {str(folder)!r} cannot be {doing} ({error.strerror}), "
                         f"instead.") from None
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by ``save_checkpoint`` onto the CPU (``weights_only``).

    Args:
        path: the checkpoint file.

    Returns:
        The saved dict.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file cannot be a checkpoint (a folder, unreadable, empty, cut
            short, not written by ``torch.save``, holding objects other than tensors,
            numbers and containers, or not a dict); one line naming the file and why.
    """
    shown = str(path)
    path = Path(path)

    def refuse(why: str):
        raise ValueError(f"The checkpoint {shown!r} cannot be loaded: {why}.") from None  # one line, no chain

    if not path.exists():
        raise FileNotFoundError(f"The checkpoint {shown!r} does not exist.")
    if path.is_dir():
        refuse("it is a folder, not a file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_ZIP_MAGIC))
    except OSError as error:
        refuse(f"the file cannot be read ({error.strerror})")
    if not head:
        refuse("the file is empty")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # never retried with weights_only=False: that could run code
        if "weights only" in str(error).lower():
            refuse("it holds Python objects other than tensors, numbers and containers, which udl does not "
                   "unpickle (not a udl checkpoint)")
        refuse("it was not written by torch.save")
    except Exception:  # EOFError, OSError (EINVAL), RuntimeError from the zip reader, KeyError from stray bytes...
        refuse("the file is cut short or damaged" if head == _ZIP_MAGIC else "it was not written by torch.save")
    if not isinstance(state, dict):
        refuse(f"it holds {type(state).__name__}, not the dict of a checkpoint")
    return state


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


def check_resumable(state: dict, path, *, writer: str, keys, settings: dict, recorded: dict | None = None) -> None:
    """Refuse, in one line, a checkpoint that ``writer`` did not write or wrote for a run with other settings.

    Args:
        state: the loaded checkpoint (:func:`load_checkpoint`).
        path: its file, for the message.
        writer: the function whose checkpoints these are ("fit", "train_adversarial").
        keys: the entries every checkpoint of ``writer`` holds.
        settings: this run's settings; each must equal the saved one.
        recorded: the settings to assume when the checkpoint records none (older files).
            Default: None, an empty dict (every setting differs).
    """
    shown = repr(str(path))
    missing = [key for key in keys if key not in state]
    if missing:
        raise ValueError(f"The checkpoint {shown} cannot be loaded: it was not written by {writer} "
                         f"(it lacks {', '.join(map(repr, missing))}).")
    saved = state.get("settings", {} if recorded is None else recorded)
    changed = [key for key in settings if saved.get(key) != settings[key]]
    if changed:
        raise ValueError(f"The checkpoint {shown} was written by a run with "
                         f"{', '.join(f'{key}={saved.get(key)!r}' for key in changed)}; resume it with the same. "
                         f"Got {', '.join(f'{key}={settings[key]!r}' for key in changed)} instead.")


def check_same_shapes(ours: dict, theirs: dict, path, what: str = "model") -> None:
    """Refuse saved weights ``theirs`` whose entries or shapes differ from the state dict ``ours``."""
    for key in [*ours, *(k for k in theirs if k not in ours)]:
        a, b = _shape(ours, key), _shape(theirs, key)
        if a != b:
            raise ValueError(f"The checkpoint {str(path)!r} holds the weights of another {what}: {b} for {key!r} "
                             f"where this {what} has {a}.")


def _shape(weights: dict, key: str) -> tuple[int, ...] | str:
    """The shape of ``weights[key]`` in a message, "nothing" where there is no such entry."""
    return tuple(getattr(weights[key], "shape", ())) if key in weights else "nothing"
