"""Running figures: seeds, records, and the result cache."""

import json
import os

import pytest
from fakes import CALLS, fake_figures

import udl
from udl import cache, runner


@pytest.fixture()
def fakes(tmp_path, monkeypatch):
    monkeypatch.setenv("UDL_CACHE_DIR", str(tmp_path / "cache"))
    with fake_figures():
        yield tmp_path


def test_same_seed_same_numbers_other_seed_other_numbers(fakes):
    a = udl.figure("99.square", "tiny", seed=3, cache=False)
    b = udl.figure("99.square", "tiny", seed=3, cache=False)
    c = udl.figure("99.square", "tiny", seed=4, cache=False)
    assert a.metrics == b.metrics and a.metrics["first"] != c.metrics["first"]
    assert a.ok and a.params["n"] == 5


def test_cache_reuses_and_no_cache_recomputes(fakes):
    CALLS["count"] = 0
    first = udl.figure("99.square", "tiny")
    second = udl.figure("99.square", "tiny")
    assert CALLS["count"] == 1 and second.cached and not first.cached
    assert second.metrics == first.metrics
    assert (second.arrays["x"] == first.arrays["x"]).all()
    udl.figure("99.square", "tiny", cache=False)
    assert CALLS["count"] == 2


def test_cache_key_changes_with_params_seed_preset_and_code(fakes, monkeypatch):
    CALLS["count"] = 0
    udl.figure("99.square", "tiny")
    udl.figure("99.square", "tiny", n=6)
    udl.figure("99.square", "tiny", seed=1)
    udl.figure("99.square", "full")
    assert CALLS["count"] == 4
    monkeypatch.setattr(runner, "code_hash", lambda: "changed-code")
    udl.figure("99.square", "tiny")
    assert CALLS["count"] == 5


@pytest.mark.parametrize("damage", [b"", b"not a zip file", None])
def test_corrupted_cache_is_recomputed(fakes, damage):
    CALLS["count"] = 0
    udl.figure("99.square", "tiny")
    (entry,) = (fakes / "cache").glob("99.square-*.npz")
    if damage is None:  # truncated half-way
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    else:
        entry.write_bytes(damage)
    again = udl.figure("99.square", "tiny")
    assert CALLS["count"] == 2 and not again.cached and again.ok
    assert udl.figure("99.square", "tiny").cached  # the entry was rewritten


def test_an_unwritable_cache_is_a_warning_and_the_result_stands(fakes, monkeypatch):
    monkeypatch.setattr(cache, "_WARNED", set())

    def read_only(src, dst):  # what a read-only disk says when the entry is put in place
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", read_only)
    CALLS["count"] = 0
    with pytest.warns(UserWarning, match=r"^the figure cache .*cache cannot be written \(Permission denied\); "
                                         r"results are not stored$") as caught:
        first = udl.figure("99.square", "tiny")
        second = udl.figure("99.square", "tiny", n=6)  # the same folder: no second warning
    assert len(caught) == 1 and first.ok and second.ok and CALLS["count"] == 2
    assert first.metrics["n"] == 5 and second.metrics["n"] == 6 and not list((fakes / "cache").glob("*.npz"))


def test_an_entry_replaced_by_a_folder_is_recomputed_with_a_warning(fakes, monkeypatch):
    monkeypatch.setattr(cache, "_WARNED", set())
    CALLS["count"] = 0
    first = udl.figure("99.square", "tiny")
    (entry,) = (fakes / "cache").glob("99.square-*.npz")
    entry.unlink()
    entry.mkdir()
    with pytest.warns(UserWarning) as caught:
        again = udl.figure("99.square", "tiny")
    assert CALLS["count"] == 2 and again.ok and not again.cached and again.metrics == first.metrics
    assert [str(w.message).split(" (")[0] for w in caught] == [
        f"the figure cache {fakes / 'cache'} cannot be read", f"the figure cache {fakes / 'cache'} cannot be written"]
    assert all(f"({entry} is a folder)" in str(w.message) for w in caught)


def test_record_schema(fakes):
    rec = runner.run_and_write("99.square", "tiny", 0, "cpu", None, True, fakes / "out")
    on_disk = json.loads((fakes / "out" / "99.square.json").read_text())
    assert on_disk == json.loads(json.dumps(rec))
    for key in ("id", "title", "chapter", "preset", "seed", "params", "metrics", "checks", "seconds",
                "device", "versions"):
        assert key in rec
    assert rec["chapter"] == 99 and rec["checks"] and rec["device"] == "cpu"
    assert set(rec["checks"][0]) == {"claim", "measured", "expected", "ok"}
    assert (fakes / "out" / "99.square.png").read_bytes()[:4] == b"\x89PNG"


def test_failure_becomes_a_failed_record(fakes):
    rec = runner.run_and_write("99.broken", "tiny", 0, "cpu", None, True, fakes / "out")
    assert not rec["ok"] and "broken on purpose" in rec["error"]
    assert rec["checks"] and not rec["checks"][0]["ok"]


def test_bad_seed_and_device():
    with pytest.raises(ValueError, match=r"^The 'seed' parameter of run_figure must be an int in \[0, 4294967295\]\. "
                                         r"Got -1 instead\.$"):
        runner.run_figure("3.1", "tiny", seed=-1)
    with pytest.raises(ValueError, match=r"^The 'seed' parameter of run_figure must be an int in \[0, 4294967295\]\. "
                                         r"Got 1180591620717411303424 instead\.$"):
        runner.run_figure("3.1", "tiny", seed=2**70)
    with pytest.raises(ValueError, match=r"^The 'fig_id' parameter of run_figure must be a figure id that `udl list` "
                                         r"shows, such as 3\.1 .*\. Got '3\.1000' instead\.$"):
        runner.run_figure("3.1000", "tiny")
    with pytest.raises(ValueError, match="device"):
        runner.resolve_device("tpu")


def test_plot_returns_a_matplotlib_figure(fakes):
    from matplotlib.figure import Figure

    r = udl.figure("99.square", "tiny")
    assert isinstance(r.plot(), Figure)
    assert r._repr_png_()[:4] == b"\x89PNG"
