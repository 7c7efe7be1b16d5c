"""Issue 12, item 10: udl.train.fit's faults, replayed; each case fails on the code before the fix.

A checkpoint path that cannot be written is refused before the first step; a save that
fails mid-run keeps the history; a resume with other settings is refused naming both
values; damaged or foreign checkpoint files give one line naming the file; nan in the
data is reported as such; targets that broadcast against the output are refused.
"""

import os
import re

import pytest
import torch
from torch import nn

from udl.train import CheckpointWriteError, LossNotFiniteError, fit


def data(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return x, x @ torch.tensor([[1.0], [-2.0], [3.0]])  # (N, 3), (N, 1)


def train(xy=None, steps=4, batch_size=4, model=None, seen=None, **kwargs):
    """Fit a 3 -> 1 linear model with SGD; return the losses. ``seen`` collects the steps taken."""
    model = model or nn.Linear(3, 1)
    seen = [] if seen is None else seen
    return fit(model, data() if xy is None else xy, nn.MSELoss(), lambda params: torch.optim.SGD(params, lr=0.05),
               steps=steps, batch_size=batch_size, device="cpu", progress=False,
               callback=lambda step, loss, m: seen.append(step), **kwargs)


def one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message and "weights_only" not in message and ".tmp" not in message, message
    return message


# --------------------------------------------------------------------------- a path that cannot be written
@pytest.mark.parametrize("case", ["a folder", "under a file", "deep under a file", "an unwritable folder"])
def test_an_unwritable_checkpoint_path_is_refused_before_the_first_step(tmp_path, case):
    (tmp_path / "file").write_text("not a folder")
    path, why = {"a folder": (tmp_path, "a folder"),
                 "under a file": (tmp_path / "file" / "run.pt", f"under the file '{tmp_path / 'file'}'"),
                 "deep under a file": (tmp_path / "file" / "a" / "run.pt", f"under the file '{tmp_path / 'file'}'"),
                 "an unwritable folder": ("/proc/udl-no-such-folder/run.pt", "cannot be created")}[case]
    seen = []
    with pytest.raises(ValueError) as error:
        train(checkpoint_path=path, seen=seen)
    assert re.fullmatch(rf"The 'checkpoint_path' parameter of fit must be a file udl can write\. "
                        rf"Got {re.escape(repr(str(path)))}, .*{re.escape(why)}.* instead\.", one_line(error))
    assert seen == []  # not one step taken


def test_a_save_that_fails_mid_run_keeps_the_history(tmp_path, monkeypatch):
    # The disk fills up at the second checkpoint (step 4): the rename of the temporary file fails.
    real_replace, calls = os.replace, []

    def replace(src, dst, *args, **kwargs):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", src)  # torch's message would name the temporary file
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    model = nn.Linear(3, 1)
    with pytest.raises(CheckpointWriteError) as error:
        fit(model, data(), nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.05), steps=8, batch_size=4,
            device="cpu", progress=False, checkpoint_path=tmp_path / "run.pt", checkpoint_every=2)
    message = one_line(error)
    assert re.fullmatch(rf"The checkpoint {re.escape(repr(str(tmp_path / 'run.pt')))} could not be written at "
                        r"step 4 \(No space left on device\); .*\.losses.*", message)
    assert isinstance(error.value, OSError) and error.value.step == 4
    assert len(error.value.losses) == 4 and error.value.losses[-1] < error.value.losses[0]


# --------------------------------------------------------------------------- resuming another run
@pytest.mark.parametrize("changed, saved, given", [
    (dict(steps=6), "steps=4", "steps=6"),
    (dict(batch_size=8), "batch_size=4", "batch_size=8"),
    (dict(seed=3), "seed=0", "seed=3"),
])
def test_resuming_with_other_settings_is_refused_naming_both(tmp_path, changed, saved, given):
    path = tmp_path / "run.pt"
    train(checkpoint_path=path)
    with pytest.raises(ValueError) as error:
        train(checkpoint_path=path, resume=True, **{"steps": 4, "batch_size": 4, **changed})
    assert re.fullmatch(rf"The checkpoint '.*run\.pt' was written by a run with {saved}; resume it with the same\. "
                        rf"Got {given} instead\.", one_line(error))


# --------------------------------------------------------------------------- files that are not checkpoints
def _truncated(path):
    train(checkpoint_path=path)
    path.write_bytes(path.read_bytes()[:3000])


class _Anything:  # a class unknown to torch's safe loader
    pass


FILES = {
    "empty": (lambda path: path.write_bytes(b""), "the file is empty"),
    "truncated": (_truncated, "the file is cut short or damaged"),
    "text": (lambda path: path.write_text("step: 4\n"), "it was not written by torch.save"),
    "foreign dict": (lambda path: torch.save({"weights": torch.zeros(3)}, path), "it was not written by fit"),
    "foreign object": (lambda path: torch.save({"net": _Anything()}, path),
                       "it holds Python objects other than tensors"),
}


@pytest.mark.parametrize("case", list(FILES))
def test_a_damaged_or_foreign_checkpoint_gives_one_line_naming_it(tmp_path, case):
    write, why = FILES[case]
    path = tmp_path / "run.pt"
    write(path)
    with pytest.raises(ValueError) as error:
        train(checkpoint_path=path, resume=True)
    message = one_line(error)
    assert message.startswith(f"The checkpoint {str(path)!r} cannot be loaded: {why}"), message
    chained = error.value.__cause__ or (None if error.value.__suppress_context__ else error.value.__context__)
    assert chained is None  # no torch error printed below it


# --------------------------------------------------------------------------- the data
def test_nan_in_tensor_data_is_named_before_training():
    x, y = data()
    x[5, 1] = float("nan")
    with pytest.raises(ValueError) as error:
        train((x, y))
    assert one_line(error) == ("The 'data' parameter of fit must hold finite numbers. "
                               "Got nan in the inputs at index (5, 1) instead.")


def test_nan_in_a_batch_is_named_when_the_loss_becomes_nan():
    x, y = data()
    y[6, 0] = float("inf")
    batches = [(x[:4], y[:4]), (x[4:8], y[4:8])]  # an iterable: read only as the loop goes
    with pytest.raises(LossNotFiniteError) as error:
        train(batches, batch_size=None)
    message = one_line(error)
    assert re.fullmatch(r"loss became (inf|nan) at step 2: the targets of its batch hold inf at index \(2, 0\); "
                        r"the data are not finite .*", message)
    assert "try a smaller learning rate" not in message
    assert len(error.value.losses) == 1  # the history before the failing step


@pytest.mark.parametrize("outputs, targets, shape", [
    (1, lambda y: y[:, 0], r"\(4, 1\)\. Got targets of shape \(4,\), which would broadcast to \(4, 4\)"),
    (1, lambda y: y.repeat(1, 3), r"\(4, 1\)\. Got targets of shape \(4, 3\), which would broadcast to \(4, 3\)"),
    (3, lambda y: y, r"\(4, 3\)\. Got targets of shape \(4, 1\), which would broadcast to \(4, 3\)"),  # torch warns
])
def test_targets_that_broadcast_against_the_output_are_refused(outputs, targets, shape):
    x, y = data()
    model = nn.Linear(3, outputs)
    before = model.weight.detach().clone()
    with pytest.raises(ValueError) as error:
        train((x, targets(y)), model=model)
    assert re.fullmatch(rf"The 'data' parameter of fit must hold targets of the model's output shape {shape}, "
                        rf"instead\.", one_line(error))
    assert torch.equal(model.weight, before)  # refused before the first update
