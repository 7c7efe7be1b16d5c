"""Issue 12, items 5, 6, 7 and 9: the command line's faults, replayed; each case fails on the code before the fix.

Every case runs ``python -m udl`` in a subprocess and asserts the exit status, the one
line that explains it and that no traceback reaches the user:

- 5: ``--out`` that is a file, lies under a file or cannot be written: one line, exit 2,
  before any computation;
- 6: a reader that goes away (``udl list | head -0``): no output, exit 141 as ``cat`` gives;
- 7: an unusable figure cache (under /proc, a file, an entry replaced by a folder, read
  only): one warning line, the figure succeeds and its record and picture are written;
  the same for the model cache of :func:`udl.cache.trained`;
- 8: a ``--seed`` beyond what torch takes: one line, exit 2, nothing computed;
- 9: ``--jobs`` above the figures is capped and above the CPUs warned about; ``--jobs -3``
  asks for a positive int; chapters in errors are in book order.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

from udl import cache

UNWRITABLE = "/proc/udl-out"  # /proc refuses new entries, even to root
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # modes do not stop root


def udl(*argv, env=None, cwd=None):
    """``python -m udl *argv``: (exit status, stdout, stderr)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", **(env or {})}
    done = subprocess.run([sys.executable, "-m", "udl", *argv], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


def one_line(stderr: str, pattern: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]), stderr
    return lines[0]


@pytest.fixture()
def a_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return path


# --------------------------------------------------------------------------- 5: --out
OUT_CASES = {
    "a file": lambda f: (str(f), r"is a file"),
    "under a file": lambda f: (str(f / "sub"), r"a-file is a file"),
    "unwritable": lambda f: (UNWRITABLE, r"cannot be created"),
    "unwritable, existing": lambda f: ("/proc", r"no file can be created in it"),
}


@pytest.mark.parametrize("case", OUT_CASES)
@pytest.mark.parametrize("command", [["figure", "3.1"], ["gallery", "--chapter", "3"]], ids=["figure", "gallery"])
def test_out_that_cannot_be_written_is_one_line_and_exit_2_before_any_work(tmp_path, a_file, command, case):
    out, reason = OUT_CASES[case](a_file)
    cache_dir = tmp_path / "cache"
    status, stdout, stderr = udl(*command, "--preset", "tiny", "--out", out, env={"UDL_CACHE_DIR": str(cache_dir)})
    assert status == 2 and stdout == ""
    one_line(stderr, rf"^udl: error: The '--out' parameter of udl {command[0]} must be a folder where files can "
                     rf"be written\. Got '{re.escape(out)}' instead \(.*{reason}.*\)\.$")
    assert not cache_dir.exists()  # nothing was computed


@pytest.mark.skipif(ROOT, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    status, _, stderr = udl("figure", "3.1", "--preset", "tiny", "--out", str(folder))
    assert status == 2
    one_line(stderr, r"--out.*must be a folder where files can be written.*Permission denied")


# --------------------------------------------------------------------------- 6: broken pipes
@pytest.mark.parametrize("argv", [["list"], ["figure", "3.1", "--preset", "tiny", "--out", "o"]],
                         ids=["list", "figure"])
def test_a_reader_that_goes_away_ends_udl_quietly(tmp_path, argv):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "UDL_CACHE_DIR": str(tmp_path / "c")}
    proc = subprocess.Popen([sys.executable, "-m", "udl", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=tmp_path)
    proc.stdout.close()  # `| head -0`: the reader is gone before the first line
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141 and stderr == ""  # 128 + SIGPIPE, as the shell reports for `cat`
    if argv[0] == "figure":  # what was computed is kept
        assert json.loads((tmp_path / "o" / "3.1.json").read_text())["ok"]


# --------------------------------------------------------------------------- 7: an unusable cache
def _entry_replaced_by_a_folder(tmp_path, a_file):
    folder = tmp_path / "cache"
    assert udl("figure", "3.1", "--preset", "tiny", "--out", str(tmp_path / "first"),
               env={"UDL_CACHE_DIR": str(folder)})[0] == 0
    (entry,) = folder.glob("3.1-*.npz")
    entry.unlink()
    entry.mkdir()
    return str(folder), r"cannot be read \(.*3\.1-\w+\.npz is a folder\); computing afresh", 2


CACHE_CASES = {
    "under /proc": lambda tmp_path, a_file: ("/proc/udl-cache", r"cannot be written \(No such file", 1),
    "a file": lambda tmp_path, a_file: (str(a_file), r"cannot be written \(.*a-file is a file\)", 1),
    "an entry replaced by a folder": _entry_replaced_by_a_folder,
}


@pytest.mark.parametrize("case", CACHE_CASES)
def test_an_unusable_figure_cache_is_a_warning_and_the_figure_succeeds(tmp_path, a_file, case):
    folder, pattern, n_lines = CACHE_CASES[case](tmp_path, a_file)
    out = tmp_path / "o"
    status, stdout, stderr = udl("figure", "3.1", "--preset", "tiny", "--out", str(out),
                                 env={"UDL_CACHE_DIR": folder})
    assert status == 0 and re.match(r"3\.1 +ok +3/3 checks", stdout), stdout + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == n_lines and all(line.startswith("udl: warning: the figure cache ") for line in lines)
    assert re.search(pattern, lines[0]), stderr
    record = json.loads((out / "3.1.json").read_text())
    assert record["ok"] and record["metrics"] and (out / "3.1.png").read_bytes()[:4] == b"\x89PNG"


def test_the_cache_warning_comes_once_per_process(tmp_path):
    status, stdout, stderr = udl("figure", "3.1", "3.12", "--preset", "tiny", "--out", str(tmp_path / "o"),
                                 env={"UDL_CACHE_DIR": "/proc/udl-cache"})
    assert status == 0 and stdout.count(" ok ") == 2
    one_line(stderr, r"^udl: warning: the figure cache /proc/udl-cache cannot be written .*; results are not stored$")


@pytest.mark.skipif(ROOT, reason="root writes into read-only folders")
def test_a_read_only_figure_cache(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o555)
    status, _, stderr = udl("figure", "3.1", "--preset", "tiny", "--out", str(tmp_path / "o"),
                            env={"UDL_CACHE_DIR": str(folder)})
    assert status == 0
    one_line(stderr, r"figure cache .* cannot be written \(Permission denied\)")


@pytest.mark.parametrize("where", ["under /proc", "a file", "an entry replaced by a folder"])
def test_an_unusable_model_cache_still_trains_and_returns_the_model(tmp_path, a_file, monkeypatch, where):
    monkeypatch.setattr(cache, "_WARNED", set(), raising=False)
    data = {"under /proc": "/proc/udl-data", "a file": str(a_file), "an entry replaced by a folder": str(tmp_path)}
    monkeypatch.setenv("UDL_DATA_DIR", data[where])
    settings = {"case": where, "now": time.time()}  # a fresh key: nothing in memory from another test
    if where == "an entry replaced by a folder":
        key = cache.settings_digest({"name": "fault", "settings": settings, "device": "cpu",
                                     "torch": torch.__version__, "format": cache._FORMAT})
        (tmp_path / "models" / f"fault-{key}.pt").mkdir(parents=True)

    def train(model):
        with torch.no_grad():
            model.weight.fill_(2.0)
        return {"loss": 0.5}

    with pytest.warns(UserWarning, match=r"^the model cache .* cannot be (read|written) \(.*\); "):
        model, record = cache.trained("fault", settings, lambda: nn.Linear(2, 1), train, device="cpu")
    assert record == {"loss": 0.5} and torch.equal(model.weight, torch.full((1, 2), 2.0))


# --------------------------------------------------------------------------- 9: --jobs and chapters
def test_jobs_above_the_figures_is_capped_and_above_the_cpus_warned(tmp_path):
    code = ("import os, sys; os.cpu_count = lambda: 2; from udl.cli import main; "
            "sys.exit(main(['gallery', '--preset', 'tiny', '--chapter', 'C', '--jobs', '1000', '--out', 'g']))")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "UDL_CACHE_DIR": str(tmp_path / "c")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("3 figures"), done.stdout + done.stderr
    one_line(done.stderr, r"^udl: warning: jobs=1000 runs 3 processes on 2 CPUs: they share the CPUs")


def test_jobs_must_be_positive_and_says_so():
    status, _, stderr = udl("gallery", "--jobs", "-3")
    assert status == 2
    one_line(stderr, r"^udl: error: argument --jobs: expected a positive int or 'auto', got '-3'$")


def test_chapters_in_errors_are_in_book_order():
    status, _, stderr = udl("gallery", "--chapter", "16")
    assert status == 2
    listed = one_line(stderr, r"no figures in chapter 16; chapters with figures: ").split(": ")[-1].split(", ")
    numbers = [int(c) for c in listed if c.isdigit()]
    assert numbers == sorted(numbers) and max(numbers) >= 10 and min(numbers) < 10
    assert listed == [str(n) for n in numbers] + sorted(c for c in listed if not c.isdigit())


# --------------------------------------------------------------------------- 8: --seed
def test_a_seed_beyond_what_torch_takes_is_refused_before_computing(tmp_path):
    status, out, err = udl("figure", "3.1", "--preset", "tiny", "--seed", str(2**70), "--out", str(tmp_path / "o"))
    assert status == 2 and out == ""
    one_line(err, r"argument --seed: expected an int in \[0, 4294967295\], got '1180591620717411303424'")
    assert not (tmp_path / "o").exists()
