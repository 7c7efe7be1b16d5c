"""Energy and CO2 of figure runs: udl.carbon, the records, the gallery's sums."""

import json
import sys
import time
import warnings

import pytest
from fakes import CALLS, fake_figures

import udl
from udl import carbon, gallery, runner


@pytest.fixture()
def fakes(tmp_path, monkeypatch):
    monkeypatch.setenv("UDL_CACHE_DIR", str(tmp_path / "cache"))
    with fake_figures():
        yield tmp_path


@pytest.fixture()
def fresh(monkeypatch):
    """A process state with no tracker yet (the module's own is restored afterwards)."""
    monkeypatch.setattr(carbon, "_STATE", {"tracker": None, "error": None, "warned": False, "setup_s": None,
                                           "grid": None})


def _busy(seconds):
    end = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < end:
        total += sum(range(1000))
    return total


def test_a_measured_block_is_positive_and_consistent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with carbon.measuring() as energy:
        _busy(0.2)
    assert energy["measured"] and energy["kwh"] > 0 and energy["co2_kg"] > 0
    assert energy["co2_kg"] == pytest.approx(energy["kwh"] * energy["grid_g_per_kwh"] / 1000, rel=1e-9)
    assert energy["kwh"] == pytest.approx(energy["cpu_kwh"] + energy["ram_kwh"] + energy["gpu_kwh"], rel=1e-9)
    assert energy["seconds"] >= 0.2 and "codecarbon" in energy["method"] and energy["overhead_s"] >= 0
    assert carbon.consistent(energy)
    if "CPU load" in energy["method"]:  # the estimate of this machine: at most TDP x time for the CPU
        assert 0 < energy["cpu_kwh"] <= energy["cpu_tdp_w"] * (energy["seconds"] + 0.02) / 3.6e6 * 1.05
    json.dumps(energy)
    assert list(tmp_path.iterdir()) == []  # codecarbon wrote no file (no emissions.csv, no lock)


def test_a_nested_block_is_measured_and_counted_in_the_outer_one():
    with carbon.measuring() as outer:
        _busy(0.05)
        with carbon.measuring() as inner:
            _busy(0.1)
        _busy(0.05)
    assert inner["measured"] and outer["measured"] and inner["segments"] == 1 and outer["segments"] == 3
    assert inner["seconds"] >= 0.1 and outer["seconds"] >= 0.2 and outer["kwh"] > inner["kwh"] > 0
    assert carbon.consistent(inner) and carbon.consistent(outer)
    with carbon.measuring() as after:
        pass
    assert after["measured"] and after["segments"] == 1


def test_consistent_detects_wrong_arithmetic():
    with carbon.measuring() as energy:
        pass
    assert carbon.consistent(energy), energy
    assert not carbon.consistent({**energy, "co2_kg": energy["co2_kg"] * 2 + 1e-9})
    assert not carbon.consistent({**energy, "kwh": energy["kwh"] * 2 + 1e-9})
    assert not carbon.consistent({**energy, "ram_kwh": 1.0, "kwh": energy["kwh"] + 1.0 - energy["ram_kwh"],
                                  "co2_kg": (energy["kwh"] + 1.0 - energy["ram_kwh"]) * energy["grid_g_per_kwh"] / 1e3})


def test_turned_off_is_not_measured_and_says_why(monkeypatch):
    monkeypatch.setenv("UDL_ENERGY", "off")
    with carbon.measuring() as energy:
        pass
    assert energy == {"measured": False, "why": "turned off by $UDL_ENERGY", "kwh": None, "co2_kg": None}


def test_missing_codecarbon_is_one_warning_and_not_measured(fresh, monkeypatch):
    monkeypatch.setitem(sys.modules, "codecarbon", None)  # import fails
    with pytest.warns(UserWarning, match=r"^energy not measured: codecarbon could not start: ModuleNotFoundError"):
        with carbon.measuring() as energy:
            pass
    assert not energy["measured"] and "ModuleNotFoundError" in energy["why"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second time: silent
        with carbon.measuring() as again:
            pass
    assert again == energy


def test_a_failing_stop_never_fails_the_block(fresh, monkeypatch):
    with carbon.measuring():
        pass
    tracker = carbon._STATE["tracker"]

    def broken():
        raise RuntimeError("no counters")

    monkeypatch.setattr(tracker, "stop_task", broken)
    with pytest.warns(UserWarning, match="codecarbon failed to stop: RuntimeError: no counters"):
        with carbon.measuring() as energy:
            value = 42
    assert value == 42 and energy["measured"] is False


def test_grid_intensity_from_the_environment(monkeypatch):
    assert carbon.grid_intensity() == carbon.GRID_G_PER_KWH
    monkeypatch.setenv("UDL_GRID_G_PER_KWH", "56")
    assert carbon.grid_intensity() == 56.0
    monkeypatch.setenv("UDL_GRID_G_PER_KWH", "lots")
    with pytest.raises(ValueError, match=r"^\$UDL_GRID_G_PER_KWH must be .* Got 'lots' instead\.$"):
        carbon.grid_intensity()


def test_every_record_has_energy_and_the_cache_keeps_it(fakes):
    CALLS["count"] = 0
    rec = runner.run_and_write("99.square", "tiny", 0, "cpu", None, True, fakes / "out")
    assert rec["energy"]["measured"] and rec["energy"]["kwh"] > 0 and carbon.consistent(rec["energy"])
    again = runner.run_and_write("99.square", "tiny", 0, "cpu", None, True, fakes / "out")
    assert CALLS["count"] == 1 and again["cached"] and again["energy"] == rec["energy"]
    assert json.loads((fakes / "out" / "99.square.json").read_text())["energy"] == rec["energy"]
    failed = runner.run_and_write("99.broken", "tiny", 0, "cpu", None, True, fakes / "out")
    assert failed["energy"] == carbon.not_measured("the figure failed")


def test_a_figure_is_computed_when_energy_cannot_be_measured(fakes, fresh, monkeypatch):
    monkeypatch.setitem(sys.modules, "codecarbon", None)
    with pytest.warns(UserWarning, match="energy not measured"):
        result = udl.figure("99.square", "tiny", cache=False)
    assert result.ok and result.energy["measured"] is False


def test_gallery_sums_the_measured_figures():
    def rec(fig_id, kwh, measured=True):
        energy = ({"measured": True, "kwh": kwh, "co2_kg": kwh * 0.475, "seconds": 2.0, "grid_g_per_kwh": 475.0,
                   "method": "m"} if measured else carbon.not_measured("off"))
        return {"id": fig_id, "energy": energy}

    summary = gallery.energy_summary([rec("1.1", 1e-6), rec("1.2", 3e-6), rec("1.3", None, False), {"id": "1.4"}])
    assert summary["kwh"] == pytest.approx(4e-6) and summary["co2_kg"] == pytest.approx(4e-6 * 0.475)
    assert summary["measured_figures"] == 2 and summary["not_measured"] == ["1.3", "1.4"]
    assert summary["measured_seconds"] == 4.0 and summary["grid_g_per_kwh"] == [475.0] and summary["methods"] == ["m"]
    html = gallery.render([], {"figures": 0, "passed": 0, "failed": 0, "not_tested": 0, "failed_figures": [],
                               "seconds": 1.0, "preset": "tiny", "ok": True, "energy": summary})
    assert "0.004 Wh" in html and "0.0019 g CO2e" in html and "not measured: 1.3, 1.4" in html


def test_the_figure_without_measurements_tests_only_the_book(monkeypatch):
    monkeypatch.setenv("UDL_ENERGY", "off")
    result = udl.figure("21.carbon", "tiny", cache=False)
    assert result.ok and not result.metrics["measured"] and result.energy["measured"] is False
    tested = [c for c in result.checks if c.tested]
    assert len(tested) == 1 and tested[0].measured == pytest.approx(56.8)
    assert "turned off" in result.notes


def test_the_figure_reads_the_energy_of_cached_runs(fakes):
    udl.figure("99.square", "tiny")
    udl.figure("99.square", "full")
    result = udl.figure("21.carbon", "tiny", cache=False)
    assert result.ok and result.arrays["cached"][0] == 2 and result.arrays["cached"][1] > 0
    assert result.arrays["consistent"].all() and result.arrays["kwh"][1] > result.arrays["kwh"][0]
    assert result.energy["segments"] == 5  # the figure's own, paused twice by the two runs it measures
    assert result.energy["kwh"] > result.arrays["kwh"].sum()


def test_mass_units():
    from udl.figures.ch21 import _mass

    assert [_mass(v) for v in (284_000.0, 5.0, 0.0123, 4.4e-7, 1e-12)] == ["284 t", "5 kg", "12.3 g", "440 µg",
                                                                          "0.001 µg"]


def test_the_cpu_lookup_is_remembered_in_udls_cache(tmp_path, monkeypatch):
    hardware_cache = pytest.importorskip("codecarbon.core.hardware_cache")
    monkeypatch.setenv("UDL_CACHE_DIR", str(tmp_path))

    def new_process():  # what a new process sees: no tracker, no codecarbon hardware cache
        monkeypatch.setattr(carbon, "_STATE", {"tracker": None, "error": None, "warned": False, "setup_s": None,
                                               "grid": None})
        monkeypatch.setattr(hardware_cache, "_plans", {})
        monkeypatch.setattr(hardware_cache, "_tdp", None)

    new_process()
    with carbon.measuring() as first:
        pass
    if carbon._cpu_key() is None or "CPU load" not in first["method"]:
        pytest.skip("no /proc/cpuinfo model name, or codecarbon reads energy counters here")
    stored = json.loads((tmp_path / "codecarbon-cpu.json").read_text())
    assert stored == {carbon._cpu_key(): {"model": first["cpu_model"], "tdp": float(first["cpu_tdp_w"])}}
    stored[carbon._cpu_key()]["tdp"] = 123.0
    (tmp_path / "codecarbon-cpu.json").write_text(json.dumps(stored))
    new_process()
    with carbon.measuring() as second:
        pass
    assert second["cpu_tdp_w"] == 123.0 and "remembered in udl's cache" in second["cpu_tdp_source"]
    assert list(tmp_path.iterdir()) == [tmp_path / "codecarbon-cpu.json"]
