"""A Hugging Face checkpoint folder on disk: ``config.json`` plus safetensors weights.

A model saved by ``transformers``' ``save_pretrained`` is a folder holding

- ``config.json``: the architecture (``model_type``, sizes, dropout rates, ...);
- ``model.safetensors``: every tensor by name, or, for a large model, several
  ``model-0000k-of-0000n.safetensors`` shards named by ``model.safetensors.index.json``.

:func:`read_checkpoint` returns both as plain Python objects (a dict and a dict of
tensors); :func:`write_checkpoint` writes them, each file atomically (written aside, then
renamed), so an interrupted save never leaves a half-written checkpoint under the final
name. Only safetensors is read or written: no pickle is ever loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from udl.cache import atomic_write, writable_folder

__all__ = ["read_checkpoint", "write_checkpoint", "CONFIG_NAME", "WEIGHTS_NAME", "INDEX_NAME"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"


def _folder(path, owner: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"The 'folder' parameter of {owner} must be a path. Got {path!r} instead.")
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"The 'folder' parameter of {owner} must be a checkpoint folder "
                         f"({CONFIG_NAME} and {WEIGHTS_NAME}). Got {str(path)!r} instead (not a folder).")
    return folder


def read_checkpoint(folder: str | os.PathLike, *, owner: str = "read_checkpoint",
                    device: str | torch.device = "cpu") -> tuple[dict, dict[str, torch.Tensor]]:
    """The configuration and the tensors of a checkpoint folder.

    Args:
        folder: a folder holding ``config.json`` and ``model.safetensors`` (or the shards
            named by ``model.safetensors.index.json``).
        owner: the function named in error messages. Default: "read_checkpoint".
        device: where the tensors are loaded. Default: "cpu".

    Returns:
        ``(config, tensors)``: the parsed ``config.json`` and a dict from tensor names to tensors.

    Raises:
        ValueError: the folder or one of its files is missing or unreadable (one line, naming it).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = _folder(folder, owner)
    config_file = folder / CONFIG_NAME
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"The 'folder' parameter of {owner} must hold a readable {CONFIG_NAME}. "
                         f"Got {str(folder)!r} instead ({type(error).__name__}: {error}).") from None
    if (folder / WEIGHTS_NAME).is_file():
        files = [folder / WEIGHTS_NAME]
    elif (folder / INDEX_NAME).is_file():
        index = json.loads((folder / INDEX_NAME).read_text())
        files = [folder / name for name in sorted(set(index["weight_map"].values()))]
    else:
        raise ValueError(f"The 'folder' parameter of {owner} must hold {WEIGHTS_NAME} (or {INDEX_NAME} and its "
                         f"shards; pickled .bin weights are not read). Got {str(folder)!r} instead.")
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            tensors.update(load_file(str(file), device=str(device)))
        except (OSError, RuntimeError, ValueError, SafetensorError) as error:  # a missing shard, a truncated or foreign file
            raise ValueError(f"The 'folder' parameter of {owner} must hold readable safetensors weights. "
                             f"Got {str(file)!r} ({type(error).__name__}: {error}).") from None
    return config, tensors


def write_checkpoint(folder: str | os.PathLike, config: dict, tensors: dict[str, torch.Tensor], *,
                     owner: str = "write_checkpoint", metadata: dict[str, str] | None = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created if missing), each atomically.

    Args:
        folder: where to write; an existing checkpoint there is replaced file by file.
        config: the configuration, written as indented JSON.
        tensors: name -> tensor; each is made contiguous and copied to the CPU. Tensors
            must not share memory (safetensors refuses shared storage): pass a tied
            weight once.
        owner: the function named in error messages. Default: "write_checkpoint".
        metadata: string pairs stored in the safetensors header. Default: ``{"format": "pt"}``
            (what ``transformers`` writes and expects).

    Returns:
        The folder, as a :class:`~pathlib.Path`.
    """
    from safetensors.torch import save

    folder = writable_folder(folder, "folder", owner)
    flat = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    atomic_write(folder / WEIGHTS_NAME, save(flat, metadata={"format": "pt", **(metadata or {})}))
    atomic_write(folder / CONFIG_NAME, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
    return folder
