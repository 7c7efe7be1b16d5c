"""Where computation runs: ``"auto"`` picks a CUDA GPU when present, else the CPU."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device, owner: str = "fit") -> torch.device:
    """``"auto"`` -> cuda if available, else cpu; ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a torch.device as given.

    Raises ``ValueError`` (naming ``owner``) for an unknown device or a CUDA device on a
    machine without one.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"The 'device' parameter of {owner} must be 'auto', 'cpu', 'cuda' or a torch.device. "
                         f"Got {device!r} instead.")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"The 'device' parameter of {owner} is 'cuda' but no CUDA GPU is available; "
                         f"use 'cpu' or 'auto'.")
    return resolved
