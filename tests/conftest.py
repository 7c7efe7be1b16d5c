"""Shared test set-up: a headless matplotlib and a private figure cache per session."""

import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see udl/__init__.py


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
