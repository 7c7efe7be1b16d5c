"""The command line: exit codes, one-line errors, --set, list, figure and gallery."""

import json
import os
import subprocess
import sys

import pytest
from fakes import CALLS

from udl import gallery
from udl.cli import main




def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("udl: error: "), err
    return lines[0]


def test_figure_writes_png_and_json(fakes, capsys):
    status, out, err = run(capsys, "figure", "99.square", "--preset", "tiny", "--out", "o")
    assert status == 0 and "99.square" in out and "1/1 checks" in out
    rec = json.loads((fakes / "o" / "99.square.json").read_text())
    assert rec["preset"] == "tiny" and rec["params"]["n"] == 5 and rec["ok"]
    assert (fakes / "o" / "99.square.png").exists()


def test_set_overrides_are_typed(fakes, capsys):
    status, _, _ = run(capsys, "figure", "99.square", "--preset", "tiny", "--out", "o",
                       "--set", "n=7", "scale=2", "flag=true", "name=b", "sizes=3,4", "--seed", "5")
    rec = json.loads((fakes / "o" / "99.square.json").read_text())
    assert status == 0
    assert rec["params"] == {"n": 7, "scale": 2.0, "flag": True, "name": "b", "sizes": [3, 4]}
    assert rec["seed"] == 5 and rec["metrics"]["n"] == 7


def test_an_untested_claim_is_reported_as_such(fakes, capsys):
    status, out, _ = run(capsys, "figure", "99.square", "--preset", "tiny", "--out", "o")
    rec = json.loads((fakes / "o" / "99.square.json").read_text())
    assert status == 0 and rec["ok"]
    assert rec["checks"][1] == {"claim": "the mean square grows with the scale", "measured": "not tested",
                                "expected": "needs runs at several scales", "ok": None, "tested": False}
    lines = out.splitlines()
    assert "1/1 checks, 1 not tested at this preset" in lines[0]
    assert lines[1] == "    not tested: the mean square grows with the scale: needs runs at several scales"


@pytest.mark.parametrize("argv, fragment", [
    (["figure", "99.squar"], "did you mean 99.square"),
    (["figure", "99.square", "--set", "m=1"], "its parameters: flag, n, name, scale, sizes"),
    (["figure", "99.square", "--set", "n=1.5"], "expected an int, got '1.5'"),
    (["figure", "99.square", "--set", "scale=big"], "expected a float"),
    (["figure", "99.square", "--set", "n"], "KEY=VALUE"),
    (["figure", "99.square", "--preset", "huge"], "invalid choice: 'huge'"),
    (["figure", "99.square", "--seed", "-3"], "expected an int in [0, 4294967295], got '-3'"),
    (["figure", "99.square", "--seed", str(2**70)], "expected an int in [0, 4294967295], got '1180591620717411303424'"),
    (["figure", "99.square", "--set", "n=-5"], "The 'n' parameter of figure 99.square must be an int in [1, 1000]. "
                                               "Got -5 instead."),
    (["figure", "99.square", "--set", "sizes="], "must be a list of 1 to 4 ints in [1, 8]. Got (empty) instead."),
    (["figure", "99.square", "--device", "tpu"], "invalid choice: 'tpu'"),
    (["gallery", "--jobs", "0"], "argument --jobs: expected a positive int or 'auto', got '0'"),
    (["gallery", "--jobs", "-3"], "argument --jobs: expected a positive int or 'auto', got '-3'"),
    (["gallery", "--jobs", "two"], "argument --jobs: expected a positive int or 'auto', got 'two'"),
    (["gallery", "--chapter", "16"], "no figures in chapter 16"),
    (["list", "--chapter", "x"], "chapter number"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_bad_usage_is_one_line_and_exit_2(fakes, capsys, argv, fragment):
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert fragment in one_line_error(err)
    assert "Traceback" not in err + out


def test_cuda_unavailable_is_a_usage_error(fakes, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    status, _, err = run(capsys, "figure", "99.square", "--device", "cuda")
    assert status == 2 and "no CUDA GPU" in one_line_error(err)


def test_failed_check_and_failed_figure_exit_1_others_still_written(fakes, capsys):
    status, out, _ = run(capsys, "figure", "99.false", "99.broken", "99.square", "--preset", "tiny", "--out", "o")
    assert status == 1
    assert "value is two" in out and "broken on purpose" in out
    assert json.loads((fakes / "o" / "99.square.json").read_text())["ok"]
    assert not json.loads((fakes / "o" / "99.false.json").read_text())["ok"]


def test_list_table_json_and_state(fakes, capsys):
    status, out, _ = run(capsys, "list", "--chapter", "99", "--json")
    rows = json.loads(out)
    assert status == 0 and [r["id"] for r in rows] == ["99.broken", "99.false", "99.square"]
    assert {r["state"] for r in rows} == {"not run"}
    assert {r["module"] for r in rows} == {"fakes"}
    assert [r["function"] for r in rows] == ["_register.<locals>.broken", "_register.<locals>.false_claim",
                                             "_register.<locals>.square"]
    run(capsys, "figure", "99.square", "--preset", "tiny")
    status, out, _ = run(capsys, "list", "--chapter", "99")
    assert status == 0 and "passed (tiny)" in out.splitlines()[2] and "Squares" in out
    assert out.splitlines()[2].split() == ["99.square", "99", "passed", "(tiny)", "fakes:_register.<locals>.square",
                                           "Squares"]


def test_list_names_the_module_and_function_of_real_figures(capsys):
    status, out, _ = run(capsys, "list", "--chapter", "3", "--json")
    rows = {r["id"]: r for r in json.loads(out)}
    assert status == 0 and (rows["3.1"]["module"], rows["3.1"]["function"]) == ("udl.figures.ch03", "relu_curve")
    status, out, _ = run(capsys, "list", "--chapter", "3")
    line = next(line for line in out.splitlines() if line.startswith("3.1 "))
    assert "  ch03:relu_curve  " in line


def test_gallery_survives_a_failing_figure(fakes, capsys):
    status, out, _ = run(capsys, "gallery", "--preset", "tiny", "--chapter", "99", "--jobs", "1", "--out", "g")
    assert status == 1
    html = (fakes / "g" / "index.html").read_text()
    assert "3 figures" in html and "FAILED" in html and "broken on purpose" in html
    assert 'src="99.square.png"' in html
    summary = json.loads((fakes / "g" / "summary.json").read_text())
    assert summary["figures"] == 3 and sorted(summary["failed_figures"]) == ["99.broken", "99.false"]
    assert summary["passed"] == 1 and summary["failed"] == 2 and summary["not_tested"] == 1
    assert "1 not tested at this preset" in html and html.count(">not tested at this preset<") == 1
    assert out.startswith("3 figures, 1 checks passed, 2 failed, 1 not tested at this preset, ")


@pytest.mark.parametrize("command", ["list", "gallery"])
def test_chapters_in_errors_are_listed_in_book_order(capsys, command):
    status, _, err = run(capsys, command, "--chapter", "16")
    listed = one_line_error(err).split("chapters with figures: ")[1].split(", ")
    assert status == 2 and listed[:3] == ["1", "3", "4"] and listed[-1] == "C"
    assert listed.index("9") < listed.index("10") < listed.index("12") < listed.index("C")


class _InlinePool:
    """A stand-in for ProcessPoolExecutor that runs each task at once and remembers its size."""

    sizes = []

    def __init__(self, max_workers, mp_context=None, initializer=None):
        self.sizes.append(max_workers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        from concurrent.futures import Future

        future = Future()
        future.set_result(fn(*args))
        return future


@pytest.mark.parametrize("jobs, cpus, processes, warned", [(1000, 2, 3, True), (2, 2, 2, False), (3, 8, 3, False)])
def test_jobs_are_capped_at_the_figures_and_warned_above_the_cpus(fakes, capsys, monkeypatch, jobs, cpus,
                                                                   processes, warned):
    monkeypatch.setattr(gallery, "ProcessPoolExecutor", _InlinePool)
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    _InlinePool.sizes.clear()
    status, out, err = run(capsys, "gallery", "--preset", "tiny", "--chapter", "99", "--jobs", str(jobs), "--out", "g")
    assert status == 1 and out.startswith("3 figures") and _InlinePool.sizes == [processes]  # 99.broken fails
    assert err == (f"udl: warning: jobs={jobs} runs {processes} processes on {cpus} CPUs: they share the CPUs, so the "
                   f"gallery is no faster than with jobs={cpus}, and each process holds its own memory\n"
                   if warned else "")


@pytest.mark.parametrize("command", [["figure", "99.square"], ["gallery", "--chapter", "99"]])
def test_an_out_that_is_a_file_is_refused_before_any_work(fakes, capsys, command):
    (fakes / "taken").write_text("a file")
    CALLS["count"] = 0
    status, out, err = run(capsys, *command, "--preset", "tiny", "--out", "taken")
    assert status == 2 and out == "" and CALLS["count"] == 0
    assert one_line_error(err) == (f"udl: error: The '--out' parameter of udl {command[0]} must be a folder where "
                                   f"files can be written. Got 'taken' instead (taken is a file).")
    with pytest.raises(ValueError, match=r"^The 'out' parameter of build_gallery must be a folder .*\(taken is a file"):
        gallery.build_gallery("tiny", "taken", chapters=[99])
    assert CALLS["count"] == 0


def test_python_dash_m_and_exit_codes():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ok = subprocess.run([sys.executable, "-m", "udl", "list", "--json"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and any(r["id"] == "3.1" for r in json.loads(ok.stdout))
    bad = subprocess.run([sys.executable, "-m", "udl", "figure", "3.99"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_parallel_gallery_of_real_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UDL_CACHE_DIR", str(tmp_path / "cache"))
    status, out, _ = run(capsys, "gallery", "--preset", "tiny", "--chapter", "C", "--jobs", "2",
                         "--out", str(tmp_path / "g"))
    assert status == 0 and out.startswith("3 figures") and " 0 failed" in out
    html = (tmp_path / "g" / "index.html").read_text()
    assert 'href="#ch-C"' in html and "Appendix C" in html and "Probability" in html
    for fig_id in ("C.1", "C.2", "C.3"):
        assert f'id="fig-{fig_id}"' in html and (tmp_path / "g" / f"{fig_id}.png").exists()
    assert "FAIL" not in html.replace("FAILED figures", "")
