"""Every registered figure at the `tiny` preset: the record is valid and every check holds."""

import json

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from udl import runner
from udl.registry import load_all

FIGURES = list(load_all())
RECORD_KEYS = {"id": str, "title": str, "chapter": (int, str), "preset": str, "seed": int, "params": dict,
               "metrics": dict, "checks": list, "seconds": float, "device": str, "versions": dict}


def test_the_foundation_figures_are_registered():
    expected = {"1.1", "3.1", "3.4", "3.5", "3.12", "3.regions", "4.3", "4.6", "5.7", "C.1", "C.2", "C.3"}
    assert expected <= set(FIGURES), sorted(expected - set(FIGURES))


@pytest.mark.parametrize("fig_id", FIGURES)
def test_figure_tiny(fig_id, tmp_path):
    result = runner.run_figure(fig_id, "tiny", seed=0, device="cpu", cache=False)
    rec = json.loads(json.dumps(runner.write_outputs(result, tmp_path)))  # must survive JSON
    for key, kind in RECORD_KEYS.items():
        assert isinstance(rec[key], kind), (key, rec[key])
    assert rec["id"] == fig_id and rec["preset"] == "tiny" and rec["caption"] and rec["module"]
    assert rec["metrics"], "metrics must hold the numbers the checks use"
    assert rec["checks"], "checks are never empty"
    failed = [c for c in rec["checks"] if c.get("tested", True) and not c["ok"]]
    assert not failed, failed
    assert any(c.get("tested", True) for c in rec["checks"]), "a figure must test at least one claim"
    assert (tmp_path / f"{fig_id}.png").stat().st_size > 1000
    fig = result.plot()
    assert isinstance(fig, Figure)
    plt.close(fig)


@pytest.mark.parametrize("fig_id", FIGURES)
def test_figure_is_reproducible_from_its_seed(fig_id):
    a = runner.run_figure(fig_id, "tiny", seed=1, device="cpu", cache=False)
    b = runner.run_figure(fig_id, "tiny", seed=1, device="cpu", cache=False)
    assert json.dumps(runner.to_jsonable(a.metrics)) == json.dumps(runner.to_jsonable(b.metrics))
