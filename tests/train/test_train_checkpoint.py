"""Checkpoints: atomic writes, and runs killed mid-way that resume bit for bit."""

import runpy
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from udl.train import fit, load_checkpoint, loop, save_checkpoint

HERE = Path(__file__).parent
train = runpy.run_path(str(HERE / "resumable_run.py"))["train"]


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def test_sigkilled_run_resumes_bit_identical(tmp_path):
    # The child dies by SIGKILL at step 11; its last checkpoint is step 9 = epoch 2,
    # batch 1 of 4, so the resumed run restarts mid-epoch, mid-schedule, with Adam state.
    ckpt = tmp_path / "run.pt"
    child = subprocess.run([sys.executable, str(HERE / "resumable_run.py"), str(ckpt), "11",
                            str(torch.get_num_threads())], timeout=120, capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    state = load_checkpoint(ckpt)
    assert (state["step"], state["epoch"], state["consumed"]) == (9, 2, 1)
    assert len(state["losses"]) == 9

    resumed, resumed_losses = train(ckpt, resume=True)
    full, full_losses = train(tmp_path / "full.pt")

    assert_same_weights(resumed, full)
    assert resumed_losses == full_losses  # 22 floats, equal to the last bit
    assert len(full_losses) == 22


def test_resume_without_the_rng_state_would_differ(tmp_path, monkeypatch):
    # Guard for the test above: dropout draws from the torch RNG, so a resume that
    # forgot to restore it would end elsewhere; the test above would catch that.
    def interrupt(step, loss, model):
        if step == 11:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "run.pt", callback=interrupt)
    monkeypatch.setattr(loop, "set_rng_state", lambda state: None)
    resumed, _ = train(tmp_path / "run.pt", resume=True)
    full, _ = train(tmp_path / "full.pt")
    assert not torch.equal(resumed[0].weight, full[0].weight)


def fit_until_interrupt(path, stop_at, resume=False):
    """Fit a list of 5 fixed batches (iterable mode) with SGD momentum; raise at step stop_at."""
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 3, generator=g), torch.randn(8, 1, generator=g)) for _ in range(5)]
    torch.manual_seed(1)
    model = nn.Linear(3, 1)

    def interrupt(step, loss, model):
        if step == stop_at:
            raise KeyboardInterrupt

    fit(model, batches, nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        steps=13, device="cpu", progress=False, callback=interrupt,
        checkpoint_path=path, checkpoint_every=3, resume=resume)
    return model


def test_interrupted_iterable_run_resumes_bit_identical(tmp_path):
    ckpt = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        fit_until_interrupt(ckpt, stop_at=8)
    state = load_checkpoint(ckpt)
    assert (state["step"], state["epoch"], state["consumed"]) == (6, 1, 1)  # 5 batches per epoch
    resumed = fit_until_interrupt(ckpt, stop_at=None, resume=True)
    full = fit_until_interrupt(tmp_path / "full.pt", stop_at=None)
    assert_same_weights(resumed, full)


def test_resume_true_without_a_checkpoint_starts_afresh(tmp_path):
    fresh = fit_until_interrupt(tmp_path / "a.pt", stop_at=None, resume=True)
    plain = fit_until_interrupt(tmp_path / "b.pt", stop_at=None)
    assert_same_weights(fresh, plain)
    assert load_checkpoint(tmp_path / "a.pt")["step"] == 13  # the end of a run is checkpointed


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    save_checkpoint({"step": 3, "w": torch.arange(4.0)}, path)
    real_save = torch.save

    def save_half_then_fail(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip file")  # some bytes reach the temporary file
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint({"step": 6, "w": torch.zeros(4)}, path)
    monkeypatch.setattr(torch, "save", real_save)

    state = load_checkpoint(path)
    assert state["step"] == 3 and torch.equal(state["w"], torch.arange(4.0))
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temporary file left


def test_fit_stopped_by_a_failed_write_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_save, calls = torch.save, []

    def fail_on_second_call(obj, f, *args, **kwargs):
        calls.append(obj["step"])
        if len(calls) == 2:
            raise OSError("No space left on device")
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fail_on_second_call)
    with pytest.raises(OSError):
        fit_until_interrupt(tmp_path / "run.pt", stop_at=None)
    assert calls == [3, 6]
    assert load_checkpoint(tmp_path / "run.pt")["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]


def test_a_checkpoint_records_the_settings_of_its_run(tmp_path):
    fit_until_interrupt(tmp_path / "run.pt", stop_at=None)
    assert load_checkpoint(tmp_path / "run.pt")["settings"] == {
        "steps": 13, "batch_size": None, "seed": 0, "shuffle": True, "len(data)": 5, "clip_grad_norm": None,
        "optimizer": "SGD", "scheduler": None}


def test_a_checkpoint_without_settings_still_resumes(tmp_path):
    # Checkpoints written before fit recorded its settings resume as before.
    ckpt = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        fit_until_interrupt(ckpt, stop_at=8)
    state = load_checkpoint(ckpt)
    del state["settings"]
    save_checkpoint(state, ckpt)
    resumed = fit_until_interrupt(ckpt, stop_at=None, resume=True)
    assert_same_weights(resumed, fit_until_interrupt(tmp_path / "full.pt", stop_at=None))


def test_resuming_another_model_or_optimizer_is_refused(tmp_path):
    ckpt = tmp_path / "run.pt"
    fit_until_interrupt(ckpt, stop_at=None)
    batches = [(torch.randn(8, 3), torch.randn(8, 2))] * 5
    model = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"^The checkpoint '.*run\.pt' holds the weights of another model: "
                                         r"\(1, 3\) for 'weight' where this model has \(2, 3\)\.$"):
        fit(model, batches, nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
            steps=13, device="cpu", progress=False, checkpoint_path=ckpt, checkpoint_every=3, resume=True)
    model = nn.Linear(3, 1)
    with pytest.raises(ValueError, match=r"with optimizer='SGD'; resume it with the same\. "
                                         r"Got optimizer='Adam' instead\.$"):
        fit(model, [(torch.randn(8, 3), torch.randn(8, 1))] * 5, nn.MSELoss(), torch.optim.Adam(model.parameters()),
            steps=13, device="cpu", progress=False, checkpoint_path=ckpt, checkpoint_every=3, resume=True)


def test_check_resumable_and_check_same_shapes_refuse_other_runs_in_one_line(tmp_path):
    from udl.train.checkpoint import check_resumable, check_same_shapes

    path = tmp_path / "run.pt"
    state = {"model": {}, "step": 3, "settings": {"steps": 10, "batch_size": 4}}
    check_resumable(state, path, writer="fit", keys=("model", "step"), settings={"steps": 10, "batch_size": 4})
    with pytest.raises(ValueError, match=r"cannot be loaded: it was not written by fit \(it lacks 'rng'\)\.$"):
        check_resumable(state, path, writer="fit", keys=("model", "rng"), settings={})
    with pytest.raises(ValueError, match=r"written by a run with steps=10; resume it with the same\. "
                                         r"Got steps=20 instead\.$"):
        check_resumable(state, path, writer="fit", keys=(), settings={"steps": 20, "batch_size": 4})
    old = {"model": {}}  # a file from before settings were recorded: `recorded` stands in
    check_resumable(old, path, writer="fit", keys=(), settings={"steps": 1}, recorded={"steps": 1})
    ours = nn.Linear(3, 2).state_dict()
    check_same_shapes(ours, nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(ValueError, match=r"weights of another model: \(2, 4\) for 'weight' where this model has "
                                         r"\(2, 3\)\.$"):
        check_same_shapes(ours, nn.Linear(4, 2).state_dict(), path)
    with pytest.raises(ValueError, match=r"another 'critic': nothing for 'bias' where this 'critic' has \(2,\)\.$"):
        check_same_shapes(ours, {"weight": ours["weight"]}, path, what="'critic'")
