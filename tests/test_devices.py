"""udl.devices: device resolution and the one decision on CPU threads."""

import pytest
import torch
from torch import nn

import udl
from udl.devices import THREADS_ENV, cpu_threads, resolve_device, using_cpu_threads
from udl.train import fit


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match=r"^The 'device' parameter of fit must be 'auto', 'cpu', 'cuda' or a "
                                         r"torch.device\. Got 'tpu' instead\.$"):
        resolve_device("tpu")


def test_cpu_threads_default_is_one(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert cpu_threads() == 1


@pytest.mark.parametrize("value, expected", [("3", 3), (" 2 ", 2), ("all", None), ("ALL", None)])
def test_cpu_threads_from_environment(monkeypatch, value, expected):
    import os

    monkeypatch.setenv(THREADS_ENV, value)
    assert cpu_threads() == (expected or os.cpu_count())


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_thread_setting_is_one_clear_error(monkeypatch, value):
    monkeypatch.setenv(THREADS_ENV, value)
    with pytest.raises(ValueError, match=rf"^The environment variable {THREADS_ENV} must be a positive int or "
                                         rf"'all'\. Got '{value}' instead\.$"):
        cpu_threads()


def test_using_cpu_threads_sets_and_restores(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "2")
    before = torch.get_num_threads()
    with using_cpu_threads() as n:
        assert n == 2 and torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), using_cpu_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("restored even on error")
    assert torch.get_num_threads() == before


def test_fit_and_figures_use_the_decision(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "2")
    torch.set_num_threads(1)
    seen = []
    model = nn.Linear(2, 1)
    fit(model, (torch.randn(8, 2), torch.randn(8, 1)), nn.MSELoss(), torch.optim.SGD(model.parameters(), 0.1),
        steps=2, batch_size=4, device="cpu", callback=lambda *_: seen.append(torch.get_num_threads()))
    assert seen == [2, 2] and torch.get_num_threads() == 1

    from udl.registry import get

    spec = get("3.5")
    original = spec.compute

    def spy(params, run):
        seen.append(torch.get_num_threads())
        return original(params, run)

    monkeypatch.setattr(spec, "compute", spy)
    udl.figure("3.5", preset="tiny", cache=False)
    assert seen[-1] == 2 and torch.get_num_threads() == 1


def test_cli_rejects_a_bad_thread_setting(monkeypatch, capsys):
    from udl.cli import main

    monkeypatch.setenv(THREADS_ENV, "zero")
    assert main(["figure", "3.5", "--preset", "tiny"]) == 2
    assert "UDL_NUM_THREADS must be a positive int" in capsys.readouterr().err
