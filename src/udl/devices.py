"""Where computation runs: ``"auto"`` picks a CUDA GPU when present, else the CPU; on the
CPU, how many threads a computation uses (one decision, :func:`cpu_threads`)."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

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


# --------------------------------------------------------------------------- CPU threads
THREADS_ENV = "UDL_NUM_THREADS"


def cpu_threads() -> int:
    """How many torch threads udl's computations use on the CPU: ``$UDL_NUM_THREADS``, else 1.

    One thread is the measured best for udl's networks (``benchmarks/cpu_threads.py``):
    they are small, so splitting each kernel over cores costs more in synchronisation
    than it gains, and a second busy process on the machine makes two threads wait on
    each other (up to several times slower). Parallelism comes from running figures
    side by side instead (``udl gallery --jobs N``). ``UDL_NUM_THREADS=4`` (or ``all``)
    asks for more, e.g. for a large model on an idle many-core machine.

    Raises:
        ValueError: ``$UDL_NUM_THREADS`` is neither a positive int nor ``all``.
    """
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return 1
    if value.lower() == "all":
        return os.cpu_count() or 1
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"The environment variable {THREADS_ENV} must be a positive int or 'all'. "
                         f"Got {value!r} instead.")
    return int(value)


@contextlib.contextmanager
def using_cpu_threads(threads: int | None = None) -> Iterator[int]:
    """Run the block with ``threads`` torch CPU threads (default :func:`cpu_threads`), then restore.

    ``udl.runner.run_figure`` and ``udl.train.fit`` run inside it, so a figure, a
    training run and the test suite all follow the one decision.

    Example:
        >>> with using_cpu_threads(1):
        ...     torch.get_num_threads()
        1
    """
    wanted = cpu_threads() if threads is None else threads
    before = torch.get_num_threads()
    if wanted != before:
        torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
