"""The training loop: ``fit`` a model to data by stochastic gradient descent (UDL ch. 6-7).

Every step is the book's recipe: draw a batch, compute the loss L[φ] on it (forward
pass), its gradient ∂L/∂φ (backward pass, section 7.4), optionally shrink that
gradient, and let the optimizer update φ (eq. 6.3 for plain SGD). Around the recipe
the loop adds what a real run needs: the device, bf16 autocast on GPUs, atomic
checkpoints that resume exactly, a progress bar, and DDP over ``torchrun`` processes.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import Dataset, TensorDataset
from tqdm.auto import tqdm

from udl.devices import resolve_device, using_cpu_threads
from udl.train import distributed
from udl.train.batches import batch_stream, batches_per_epoch
from udl.train.checkpoint import (check_resumable, check_same_shapes, check_writable, load_checkpoint, rng_state,
                                  save_checkpoint, set_rng_state)
from udl.validate import check_callable, check_float, check_instance, check_int


class LossNotFiniteError(FloatingPointError):
    """The loss became nan or inf: training diverged (often a learning rate too large), or the batch held nan/inf.

    Attributes:
        losses: the loss of every step before the one that failed (those before a resume included).
    """

    def __init__(self, message: str, losses: Iterable[float] = ()):
        super().__init__(message)
        self.losses = list(losses)


class CheckpointWriteError(OSError):
    """A checkpoint of a running ``fit`` could not be written (a full disk, its folder removed...).

    The run stops at that step; the model keeps that step's weights in place, the
    previous checkpoint is left intact, and the error carries the history.

    Attributes:
        path: the checkpoint file. step: the step whose checkpoint failed.
        losses: the loss of every step up to ``step`` (those before a resume included).
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None, step: int | None = None,
                 losses: Iterable[float] = ()):
        super().__init__(message)
        self.path, self.step, self.losses = path, step, list(losses)


def autocast_dtype(device: torch.device) -> torch.dtype:
    """The dtype the forward pass computes in: bf16 autocast on CUDA, float32 on CPU.

    bf16 keeps float32's exponent range, so unlike float16 it needs no loss scaling.
    """
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def fit(model: nn.Module, data: Dataset | tuple[torch.Tensor, ...] | Iterable,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
        optimizer: Optimizer | Callable[[Iterable[nn.Parameter]], Optimizer], *,
        steps: int | None = None, epochs: int | None = None, batch_size: int | None = None,
        shuffle: bool = True, seed: int = 0, device: str | torch.device = "auto",
        clip_grad_norm: float | None = None,
        scheduler: LRScheduler | Callable[[Optimizer], LRScheduler] | None = None,
        callback: Callable[[int, float, nn.Module], None] | None = None,
        checkpoint_path: str | os.PathLike | None = None, checkpoint_every: int | None = None,
        resume: bool | str | os.PathLike = False, progress: bool | None = None) -> list[float]:
    """Train ``model`` on ``data`` for a number of steps or epochs; return the loss of every step.

    Step s (counted from 1) draws the s-th batch ``(x, y)``, computes
    ``loss_fn(model(x), y)``, back-propagates, clips the gradient if asked, and calls
    ``optimizer.step()`` then ``scheduler.step()``. The data order is a function of
    ``seed`` and the step alone (see ``udl.train.batches``), so a run resumed from a
    checkpoint ends with exactly the weights of an uninterrupted run (on CPU, bit for
    bit). The global torch/NumPy/Python generators (dropout, ...) are not seeded here:
    seed them before building the model; checkpoints save and restore them.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in
    ``DistributedDataParallel`` (gloo on CPU, NCCL on CUDA), each process trains on
    its 1/world_size share of every global batch, the returned losses are averaged
    over processes, and only rank 0 writes checkpoints and shows the progress bar.

    Args:
        model: any ``nn.Module``; moved to ``device`` in place and left in train mode.
        data: a Dataset or a tuple of tensors ``(x, y)`` together with ``batch_size``
            (the loop shuffles; exact resume), or an iterable of ``(x, y)`` batches
            such as a DataLoader (``batch_size=None``).
        loss_fn: ``loss_fn(model(x), y)`` -> scalar, e.g. ``nn.MSELoss()``. ``None``
            when the model computes its own loss: ``model(*batch)`` -> scalar.
        optimizer: a ``torch.optim`` optimizer over ``model.parameters()``, or a
            factory ``params -> optimizer`` (called after the move to ``device``).
        steps: number of optimizer steps to take in total. Default: None.
        epochs: or the number of passes over the data (exactly one of the two).
        batch_size: global batch size B when ``data`` is a dataset (the last N mod B
            rows of each shuffled epoch are left out). Default: None.
        shuffle: shuffle a dataset anew each epoch. Default: True.
        seed: seeds the data order. Default: 0.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a torch.device. Default: "auto".
        clip_grad_norm: if set, rescale the gradient g to norm at most c:
            g ← g · min(1, c / ‖g‖), ‖g‖ over all parameters. Default: None.
        scheduler: an LR scheduler, or a factory ``optimizer -> scheduler``; stepped
            after every optimizer step. Default: None.
        callback: ``callback(step, loss, model)`` after each step (on every process),
            e.g. to record snapshots for a figure. Default: None.
        checkpoint_path: where to write checkpoints (model, optimizer, scheduler,
            random states, data position, losses and the settings of the run);
            written at the end and every ``checkpoint_every`` steps. A path that
            cannot be written (a folder, under a file, an unwritable folder) is
            refused before the first step. Default: None (no checkpoints).
        checkpoint_every: steps between checkpoints. Default: None (only at the end).
        resume: ``True`` continues from ``checkpoint_path`` if that file exists (else
            starts afresh), a path continues from that file. The run must be the
            one that wrote it: the same ``steps`` (or epochs), ``batch_size``,
            ``seed``, ``shuffle``, number of samples, ``clip_grad_norm``, optimizer
            and scheduler types, and model. The optimizer's hyperparameters (``lr``,
            momentum...) are those saved, as ``Optimizer.load_state_dict`` restores
            them. Default: False.
        progress: show a tqdm bar; None shows it only on a terminal. Default: None.

    On the CPU the loop runs with :func:`udl.devices.cpu_threads` torch threads (one,
    unless ``$UDL_NUM_THREADS`` says otherwise) and restores the caller's setting after.

    Returns:
        The loss of every step, ``losses[s - 1]`` for step s (those before a resume
        included).

    Raises:
        TypeError, ValueError: a bad argument, refused before the first step: among
            them data tensors holding nan or inf, a checkpoint path that cannot be
            written, a checkpoint to resume that is damaged, not written by ``fit``
            or written by a run with other settings, and (checked on the first batch)
            floating-point targets whose shape differs from the output's in a way that
            broadcasts, e.g. ``(N,)`` against ``(N, 1)``.
        LossNotFiniteError: the loss became nan or inf; the message names the step and,
            if the batch held nan or inf, where. Its ``losses`` hold the steps before.
        CheckpointWriteError: a checkpoint could not be written mid-run (an ``OSError``;
            the previous checkpoint stays intact). Its ``losses`` hold every step so far,
            and the model keeps the weights of the last step.

    Example:
        >>> model = nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Linear(16, 1))
        >>> x = torch.linspace(-1, 1, 64)[:, None]
        >>> losses = fit(model, (x, x**2), nn.MSELoss(), torch.optim.Adam(model.parameters(), 1e-2),
        ...              steps=200, batch_size=16, device="cpu")
        >>> losses[-1] < losses[0]
        True
    """
    _check_arguments(model, data, loss_fn, optimizer, steps, epochs, batch_size, seed, clip_grad_norm,
                     scheduler, callback, checkpoint_path, checkpoint_every, resume)
    with using_cpu_threads():  # udl's one decision on CPU threads (udl.devices.cpu_threads)
        return _fit(model, data, loss_fn, optimizer, steps, epochs, batch_size, shuffle, seed, device,
                    clip_grad_norm, scheduler, callback, checkpoint_path, checkpoint_every, resume, progress)


def _fit(model, data, loss_fn, optimizer, steps, epochs, batch_size, shuffle, seed, device, clip_grad_norm,
         scheduler, callback, checkpoint_path, checkpoint_every, resume, progress) -> list[float]:
    """The body of :func:`fit`, its arguments already checked."""
    device = resolve_device(device)
    if device.type == "cuda" and distributed.world_size() > 1:
        device = torch.device("cuda", distributed.local_rank())
    distributed.init(device)
    model.to(device)
    if not isinstance(optimizer, Optimizer):
        optimizer = optimizer(model.parameters())
    if scheduler is not None and not isinstance(scheduler, LRScheduler):
        scheduler = scheduler(optimizer)
    if isinstance(data, tuple):
        data = TensorDataset(*data)
    if steps is None:
        steps = epochs * batches_per_epoch(data, batch_size)

    settings = {"steps": steps, "batch_size": batch_size, "seed": seed, "shuffle": shuffle,
                "len(data)": len(data) if hasattr(data, "__len__") else None, "clip_grad_norm": clip_grad_norm,
                "optimizer": type(optimizer).__name__,
                "scheduler": None if scheduler is None else type(scheduler).__name__}
    step, epoch, consumed, losses = 0, 0, 0, []
    if resume is True:
        resume = checkpoint_path if Path(checkpoint_path).exists() else False
    if resume:
        state = _resumable(resume, settings, model)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        step, epoch, consumed, losses = state["step"], state["epoch"], state["consumed"], state["losses"]
        set_rng_state(state["rng"][distributed.rank()])  # last: nothing may draw between here and step+1

    net = model  # what runs forward; DDP averages the gradients across processes in backward
    if distributed.world_size() > 1:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    amp_dtype = autocast_dtype(device)
    batches = batch_stream(data, batch_size, seed=seed, shuffle=shuffle, epoch=epoch, start=consumed)
    quiet = None if progress is None else not progress  # None: tqdm shows the bar on a terminal only
    first = step + 1
    modules = list(model.modules())  # model.train() sets every one: done only when one is in eval mode
    # float32 outside any autocast region: entering a disabled autocast every step would change nothing
    autocast = amp_dtype != torch.float32 or torch.is_autocast_enabled(device.type)
    with tqdm(total=steps, initial=step, desc="fit", leave=False,
              disable=quiet if distributed.is_main() else True) as bar:
        for step in range(step + 1, steps + 1):
            epoch, consumed, batch = next(batches)
            batch = tuple(t.to(device, non_blocking=True) for t in batch)
            if not all(m.training for m in modules):  # a callback may have switched to eval mode
                model.train()
            optimizer.zero_grad(set_to_none=True)
            with (torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype != torch.float32) if autocast
                  else contextlib.nullcontext()):
                if loss_fn is None:
                    loss = net(*batch)
                elif step == first:  # before the first update: targets that broadcast give a wrong loss
                    loss = _checked_loss(loss_fn, net(batch[0]), batch[1])
                else:
                    loss = loss_fn(net(batch[0]), batch[1])
            loss_value = distributed.average(loss.detach().float()).item()  # same on every process
            if not math.isfinite(loss_value):
                raise LossNotFiniteError(_not_finite(loss_value, step, batch, loss_fn), losses)
            loss.backward()  # ∂L/∂φ; under DDP also averaged over processes
            if clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            losses.append(loss_value)
            if callback is not None:
                callback(step, loss_value, model)
            due = step == steps or (checkpoint_every is not None and step % checkpoint_every == 0)
            if checkpoint_path is not None and due:
                _checkpoint(checkpoint_path, model, optimizer, scheduler, step, epoch, consumed, losses, settings)
            bar.update()
            if not bar.disable:  # a hidden bar costs no formatting
                bar.set_postfix(loss=f"{loss_value:.4g}", refresh=False)
    return losses


def _checkpoint(path, model, optimizer, scheduler, step, epoch, consumed, losses, settings) -> None:
    """Write everything a resumed run needs to continue exactly where this one stands."""
    rngs = distributed.gather(rng_state())  # every process's dropout generator, rank order
    if distributed.is_main():
        try:
            save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": None if scheduler is None else scheduler.state_dict(),
                             "step": step, "epoch": epoch, "consumed": consumed,
                             "losses": list(losses), "rng": rngs, "settings": settings}, path)
        except OSError as error:  # its strerror alone: the full error names the temporary file
            raise CheckpointWriteError(
                f"The checkpoint {str(path)!r} could not be written at step {step} ({error.strerror}); the model "
                f"holds the weights of step {step}, and this error's .losses the losses of steps 1-{step}.",
                path, step, losses) from None


# --------------------------------------------------------------------------- resuming
_CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "step", "epoch", "consumed", "losses", "rng")


def _resumable(path, settings: dict, model: nn.Module) -> dict:
    """The checkpoint at ``path``, refused unless ``fit`` wrote it for this run: its settings and model."""
    state = load_checkpoint(path)
    check_resumable(state, path, writer="fit", keys=_CHECKPOINT_KEYS, settings=settings,
                    recorded=settings)  # checkpoints of udl before 12 did not record their settings
    if len(state["rng"]) != distributed.world_size():
        raise ValueError(f"The checkpoint {str(path)!r} was written by {len(state['rng'])} processes; "
                         f"resume it with as many. Got {distributed.world_size()} instead.")
    check_same_shapes(model.state_dict(), state["model"], path)
    return state


# --------------------------------------------------------------------------- the data
def _role(k: int, loss_fn) -> str:
    """What tensor ``k`` of a batch is, in messages."""
    return ("inputs", "targets")[k] if loss_fn is not None and k < 2 else f"data[{k}]"


def _first_not_finite(t: torch.Tensor) -> tuple[float, object] | None:
    """The first nan or inf of ``t`` and its index (an int for 1-D), or None when all are finite."""
    if not t.is_floating_point():
        return None
    finite = torch.isfinite(t)
    if bool(finite.all()):
        return None
    where = tuple(int(i) for i in (~finite).nonzero()[0])
    return t[where].item(), where[0] if len(where) == 1 else where


def _check_finite(data, loss_fn) -> None:
    """Refuse data tensors (a tuple or a TensorDataset) holding nan or inf: one scan, before training."""
    tensors = data if isinstance(data, tuple) else data.tensors if isinstance(data, TensorDataset) else ()
    for k, t in enumerate(tensors):
        bad = _first_not_finite(t)
        if bad is not None:
            raise ValueError(f"The 'data' parameter of fit must hold finite numbers. "
                             f"Got {bad[0]} in the {_role(k, loss_fn)} at index {bad[1]} instead.")


def _not_finite(loss_value: float, step: int, batch: tuple[torch.Tensor, ...], loss_fn) -> str:
    """Why the loss of ``step`` is nan or inf: a batch that holds nan/inf, else divergence."""
    for k, t in enumerate(batch):
        bad = _first_not_finite(t)
        if bad is not None:
            return (f"loss became {loss_value} at step {step}: the {_role(k, loss_fn)} of its batch hold {bad[0]} "
                    f"at index {bad[1]}; the data are not finite (a smaller learning rate will not help).")
    return f"loss became {loss_value} at step {step}; try a smaller learning rate or clip_grad_norm."


def _checked_loss(loss_fn, output, target) -> torch.Tensor:
    """``loss_fn(output, target)``, refusing floating-point targets that broadcast against the output.

    Such a loss is computed, silently wrong: ``(N,)`` targets against ``(N, 1)``
    outputs compare every target with every output, an (N, N) grid. Refused are a
    broadcast that changes the output's shape, and the mismatch torch's element-wise
    losses warn about ("Using a target size ... different to the input size").
    Integer targets (class indices) have their own shapes and are left alone.
    """
    if not (isinstance(output, torch.Tensor) and isinstance(target, torch.Tensor)) or output.shape == target.shape \
            or not target.is_floating_point():
        return loss_fn(output, target)
    try:
        shape = tuple(torch.broadcast_shapes(output.shape, target.shape))
    except RuntimeError:  # no broadcast: the loss compares them its own way, or fails loudly
        return loss_fn(output, target)
    refusal = ValueError(f"The 'data' parameter of fit must hold targets of the model's output shape "
                         f"{tuple(output.shape)}. Got targets of shape {tuple(target.shape)}, which would broadcast "
                         f"to {shape}, instead.")
    if shape != tuple(output.shape):
        raise refusal
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Using a target size", category=UserWarning)
        try:
            return loss_fn(output, target)
        except UserWarning:
            pass
    raise refusal


# --------------------------------------------------------------------------- argument checks
def _check_arguments(model, data, loss_fn, optimizer, steps, epochs, batch_size, seed, clip_grad_norm,
                     scheduler, callback, checkpoint_path, checkpoint_every, resume) -> None:
    """Raise the TypeError/ValueError that names the first bad argument of fit."""
    check_instance(model, "model", "fit", nn.Module)
    check_callable(loss_fn, "loss_fn", "fit", optional=True)
    check_callable(callback, "callback", "fit", optional=True)
    if not (isinstance(optimizer, Optimizer) or callable(optimizer)):
        _fail(TypeError, "optimizer", "a torch Optimizer or a function params -> Optimizer", optimizer)
    if scheduler is not None and not (isinstance(scheduler, LRScheduler) or callable(scheduler)):
        _fail(TypeError, "scheduler", "an LRScheduler, a function optimizer -> LRScheduler or None", scheduler)
    if (steps is None) == (epochs is None):
        raise ValueError(f"fit needs exactly one of 'steps' and 'epochs'. Got steps={steps!r}, epochs={epochs!r}.")
    for name, value in (("steps", steps), ("epochs", epochs), ("batch_size", batch_size),
                        ("checkpoint_every", checkpoint_every)):
        if value is not None:
            check_int(value, name, "fit")
    if clip_grad_norm is not None:
        check_float(clip_grad_norm, "clip_grad_norm", "fit", low=0, low_open=True)
    check_int(seed, "seed", "fit", minimum=0)

    if isinstance(data, tuple) and not (data and all(isinstance(t, torch.Tensor) for t in data)
                                        and len({len(t) for t in data}) == 1):
        _fail(TypeError, "data", "a tuple of tensors with the same first dimension", data)
    if batch_size is None:
        if isinstance(data, tuple):
            raise ValueError("The 'batch_size' parameter of fit must be set when data is a tuple of tensors. "
                             "Got None instead.")
        if not isinstance(data, Iterable):
            _fail(TypeError, "data", "an iterable of batches when batch_size is None", data)
    else:
        if not isinstance(data, (Dataset, tuple)):
            _fail(TypeError, "data", "a Dataset or a tuple of tensors when batch_size is set", data)
        if batch_size > len(data[0] if isinstance(data, tuple) else data):
            raise ValueError(f"The 'batch_size' parameter of fit must be at most the number of samples. "
                             f"Got {batch_size} instead.")
        if batch_size % distributed.world_size():
            raise ValueError(f"The 'batch_size' parameter of fit must be a multiple of the "
                             f"{distributed.world_size()} processes. Got {batch_size} instead.")
    if epochs is not None and not hasattr(data, "__len__"):
        _fail(TypeError, "data", "sized (have a len) when epochs is set", data)
    _check_finite(data, loss_fn)

    if checkpoint_path is None and (checkpoint_every is not None or resume is True):
        raise ValueError("The 'checkpoint_path' parameter of fit must be set with checkpoint_every or "
                         "resume=True. Got None instead.")
    if not isinstance(resume, (bool, str, os.PathLike)):
        _fail(TypeError, "resume", "a bool or a path", resume)
    if checkpoint_path is not None:
        check_instance(checkpoint_path, "checkpoint_path", "fit", (str, os.PathLike))
        if distributed.is_main():  # the one process that writes it
            check_writable(checkpoint_path, "checkpoint_path", "fit")


def _fail(error: type[Exception], name: str, wanted: str, value) -> None:
    shown = repr(value) if isinstance(value, (str, int, float)) else f"an object of type {type(value).__name__}"
    raise error(f"The {name!r} parameter of fit must be {wanted}. Got {shown} instead.")
