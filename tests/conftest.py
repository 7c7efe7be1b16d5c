"""Shared test set-up: a headless matplotlib, udl's CPU-thread decision, a private cache per session."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see udl/__init__.py; before torch is imported

import matplotlib  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fakes import fake_figures  # noqa: E402

from udl.devices import cpu_threads  # noqa: E402

matplotlib.use("Agg")
# The tests follow the decision the runner and fit make (one thread unless
# $UDL_NUM_THREADS says otherwise), so code outside fit and figures runs the same way.
torch.set_num_threads(cpu_threads())


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep the tests' cache and generated data out of the user's home."""
    root = tmp_path_factory.mktemp("udl-cache")
    old = {k: os.environ.get(k) for k in ("UDL_CACHE_DIR", "UDL_DATA_DIR")}
    os.environ["UDL_CACHE_DIR"] = str(root / "figures")
    os.environ["UDL_DATA_DIR"] = str(root / "data")
    yield
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture()
def fakes(tmp_path, monkeypatch):
    """Three fake figures registered for the test (tests/fakes.py), a private figure cache, and tmp_path as the cwd."""
    monkeypatch.setenv("UDL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    with fake_figures():
        yield tmp_path
