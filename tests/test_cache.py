"""udl.cache: folders from the environment, atomic writes, source digests, models trained once."""

import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from udl import cache


# --------------------------------------------------------------------------- folders
def test_folders_honour_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("UDL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("UDL_CACHE_DIR", str(tmp_path / "figures"))
    assert cache.data_dir() == tmp_path / "data" and cache.cache_dir() == tmp_path / "figures"
    monkeypatch.delenv("UDL_DATA_DIR")
    monkeypatch.delenv("UDL_CACHE_DIR")
    assert cache.data_dir() == Path.home() / ".cache" / "udl" / "data"
    assert cache.cache_dir() == Path.home() / ".cache" / "udl" / "figures"


def test_writable_folder_creates_the_folder_and_tries_a_file(tmp_path):
    folder = tmp_path / "a" / "b"
    assert cache.writable_folder(folder, "out", "f") == folder and folder.is_dir()
    assert os.listdir(folder) == []  # the trial file is gone
    assert cache.writable_folder(str(folder), "out", "f") == folder  # an existing folder is fine


@pytest.mark.parametrize("where, why", [
    ("file", r"\(.*/file is a file\)"),
    ("file/sub/dir", r"\(.*/file is a file\)"),
    ("/proc/udl-out", r"\(it cannot be created: No such file or directory\)"),
    ("/proc", r"\(no file can be created in it: "),
])
def test_writable_folder_refuses_in_one_line(tmp_path, where, why):
    (tmp_path / "file").write_text("x")
    path = tmp_path / where
    with pytest.raises(ValueError, match=rf"^The 'out' parameter of build_gallery must be a folder where files can be "
                                         rf"written\. Got '{re.escape(str(path))}' instead {why}"):
        cache.writable_folder(path, "out", "build_gallery")
    with pytest.raises(TypeError, match=r"^The 'out' parameter of f must be a path\. Got 3 instead\.$"):
        cache.writable_folder(3, "out", "f")


def test_an_unusable_cache_warns_once_per_folder_and_verb(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_WARNED", set())
    (tmp_path / "file").write_text("x")
    entry = tmp_path / "file" / "x.npz"
    error = NotADirectoryError(20, "Not a directory")
    with pytest.warns(UserWarning) as caught:
        cache.warn_unusable("figure cache", "written", entry, error)
        cache.warn_unusable("figure cache", "written", entry.with_name("y.npz"), error)  # same folder: silent
        cache.warn_unusable("figure cache", "read", entry, PermissionError(13, "Permission denied"))
    folder = tmp_path / "file"
    assert [str(w.message) for w in caught] == [
        f"the figure cache {folder} cannot be written ({folder} is a file); results are not stored",
        f"the figure cache {folder} cannot be read ({folder} is a file); computing afresh"]


# --------------------------------------------------------------------------- atomic writes
def test_atomic_write_creates_the_folder_and_replaces_the_file(tmp_path):
    path = tmp_path / "a" / "b" / "x.bin"
    assert cache.atomic_write(path, b"first") == path
    cache.atomic_write(path, b"second")
    assert path.read_bytes() == b"second" and os.listdir(path.parent) == ["x.bin"]
    assert path.stat().st_mode & 0o777 == 0o644


class _Unsaveable:
    def __reduce__(self):
        raise RuntimeError("cannot be pickled")


def test_a_failed_write_leaves_no_partial_file_and_the_old_one_intact(tmp_path, monkeypatch):
    path = tmp_path / "x.pt"
    cache.atomic_write(path, b"old")
    with pytest.raises(RuntimeError):
        cache.atomic_save({"bad": _Unsaveable()}, path)  # fails before any byte is written

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)  # fails after the bytes are written
    with pytest.raises(OSError, match="disk full"):
        cache.atomic_write(path, b"new" * 1000, fsync=True)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["x.pt"]


def test_atomic_save_round_trips_through_a_safe_load(tmp_path):
    state = {"w": torch.arange(6.0).view(2, 3), "losses": [1.0, 0.5]}
    cache.atomic_save(state, tmp_path / "s.pt")
    loaded = torch.load(tmp_path / "s.pt", weights_only=True)
    assert torch.equal(loaded["w"], state["w"]) and loaded["losses"] == [1.0, 0.5]


def test_atomic_write_refuses_what_is_not_bytes(tmp_path):
    with pytest.raises(TypeError, match="The 'data' parameter of atomic_write must be bytes. Got str instead."):
        cache.atomic_write(tmp_path / "x", "text")


# --------------------------------------------------------------------------- digests
def test_source_digest_follows_every_file_and_its_name(tmp_path):
    src = tmp_path / "pkg"
    shutil.copytree(Path(cache.__file__).parent, src, ignore=shutil.ignore_patterns("__pycache__"))
    before = cache.source_digest(src)
    assert len(before) == 16 and before == cache.source_digest(src)
    (src / "nn" / "activations.py").write_text((src / "nn" / "activations.py").read_text() + "\n# edit\n")
    edited = cache.source_digest(src)
    assert edited != before
    (src / "nn" / "activations.py").rename(src / "nn" / "renamed.py")
    assert cache.source_digest(src) != edited  # same bytes under another name


def test_source_digest_of_modules_and_files(tmp_path):
    import udl.devices

    assert cache.source_digest(udl.devices) == cache.source_digest(udl.devices.__file__)
    assert cache.source_digest(udl.devices) != cache.source_digest(udl.devices, cache)
    with pytest.raises(TypeError, match="'sources' parameter of source_digest"):
        cache.source_digest(3)


def test_settings_digest_changes_with_settings_and_code():
    import udl.devices

    a = cache.settings_digest({"steps": 3, "lr": 0.1}, udl.devices)
    assert a == cache.settings_digest({"lr": 0.1, "steps": 3}, udl.devices)  # key order does not matter
    assert a != cache.settings_digest({"steps": 4, "lr": 0.1}, udl.devices)
    assert a != cache.settings_digest({"steps": 3, "lr": 0.1}, udl.devices, cache)
    with pytest.raises(TypeError, match="JSON values"):
        cache.settings_digest({"x": object()})


# --------------------------------------------------------------------------- trained models
class _Counter:
    """A training that counts its calls: w ← w + 1 per step, from a seeded start."""

    def __init__(self):
        self.calls = 0

    def build(self):
        net = nn.Linear(3, 2)
        with torch.no_grad():
            net.weight.copy_(torch.randn(2, 3, generator=torch.Generator().manual_seed(0)))
            net.bias.zero_()
        return net

    def train(self, net):
        self.calls += 1
        with torch.no_grad():
            net.weight.add_(1.0)
            net.bias.add_(torch.rand(2))  # from the global generator: forked by the memo
        return {"losses": [2.0, 1.0]}


@pytest.fixture()
def memo(tmp_path, monkeypatch):
    monkeypatch.setenv("UDL_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(cache, "_MEMORY", type(cache._MEMORY)())
    return _Counter()


def _get(counter, **kw):
    return cache.trained("counter", {"steps": 1}, counter.build, counter.train, sources=[cache], device="cpu", **kw)


def test_trained_returns_fresh_independent_copies(memo):
    state = torch.get_rng_state()
    a, record_a = _get(memo)
    b, record_b = _get(memo)
    assert memo.calls == 1 and torch.equal(state, torch.get_rng_state())  # the caller's generator untouched
    assert a is not b and not a.training and record_a == {"losses": [2.0, 1.0]} == record_b
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    start = memo.build().weight
    assert torch.equal(a.weight, start + 1.0)
    with torch.no_grad():
        a.weight.zero_()  # the caller's to modify: nothing reaches the next caller
    record_a["losses"].append(0.0)
    c, record_c = _get(memo)
    assert torch.equal(c.weight, start + 1.0) and record_c == {"losses": [2.0, 1.0]}


def test_a_caller_under_no_grad_still_trains_with_gradients(tmp_path, monkeypatch):
    """The first caller may hold torch.no_grad() (a measure that asks for a cached judge): training is unaffected."""
    monkeypatch.setenv("UDL_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(cache, "_MEMORY", type(cache._MEMORY)())

    def train(net):
        loss = (net(torch.ones(1, 3)) ** 2).sum()
        loss.backward()  # raises "does not require grad" if the caller's no_grad leaked in
        return {"grad": float(net.weight.grad.abs().sum())}

    with torch.no_grad():
        _, record = cache.trained("grad", {}, lambda: nn.Linear(3, 2), train, sources=[cache], device="cpu")
    assert record["grad"] > 0


def test_trained_once_per_machine_across_processes(memo, tmp_path):
    a, _ = _get(memo)
    (path,) = (tmp_path / "models").glob("counter-*.pt")
    cache._MEMORY.clear()  # as a new process would start
    b, record = _get(memo)
    assert memo.calls == 1 and record == {"losses": [2.0, 1.0]}
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    saved = torch.load(path, weights_only=True)
    assert torch.equal(saved["model"]["weight"], a.weight)


def test_other_settings_or_code_train_again(memo, tmp_path):
    _get(memo)
    cache.trained("counter", {"steps": 2}, memo.build, memo.train, sources=[cache], device="cpu")
    cache.trained("counter", {"steps": 1}, memo.build, memo.train, sources=[cache, cache.__file__], device="cpu")
    assert memo.calls == 3 and len(list((tmp_path / "models").glob("counter-*.pt"))) == 3


@pytest.mark.parametrize("damage", [b"", b"not a zip file", "truncated", "other weights"])
def test_a_damaged_file_is_trained_again(memo, tmp_path, damage):
    a, _ = _get(memo)
    (path,) = (tmp_path / "models").glob("counter-*.pt")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "other weights":
        torch.save({"model": {"weight": torch.zeros(5)}, "record": {}}, path)
    else:
        path.write_bytes(damage)
    cache._MEMORY.clear()
    b, record = _get(memo)
    assert memo.calls == 2 and torch.equal(a.weight, b.weight) and record == {"losses": [2.0, 1.0]}
    cache._MEMORY.clear()
    _get(memo)  # the file was replaced by a good one
    assert memo.calls == 2


def test_without_the_disk_nothing_is_written(memo, tmp_path):
    _get(memo, disk=False)
    _get(memo, disk=False)
    assert memo.calls == 1 and not (tmp_path / "models").exists()


def test_an_unwritable_cache_is_a_warning_and_the_model_is_still_returned(memo, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_WARNED", set())
    monkeypatch.setenv("UDL_DATA_DIR", "/proc/udl-data")  # /proc refuses new folders, even to root
    with pytest.warns(UserWarning, match=r"^the model cache /proc/udl-data/models cannot be written "
                                         r"\(No such file or directory\); results are not stored$"):
        model, record = _get(memo)
    assert memo.calls == 1 and record == {"losses": [2.0, 1.0]}
    assert torch.equal(model.weight, memo.build().weight + 1.0)


def test_an_unreadable_file_is_a_warning_and_trained_again(memo, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_WARNED", set())
    a, _ = _get(memo)
    (path,) = (tmp_path / "models").glob("counter-*.pt")
    path.unlink()
    path.mkdir()  # an entry replaced by a folder: cannot be read, nor replaced
    cache._MEMORY.clear()
    with pytest.warns(UserWarning) as caught:
        b, record = _get(memo)
    assert memo.calls == 2 and torch.equal(a.weight, b.weight) and record == {"losses": [2.0, 1.0]}
    assert [str(w.message) for w in caught] == [
        f"the model cache {path.parent} cannot be {verb} ({path} is a folder); {then}"
        for verb, then in (("read", "computing afresh"), ("written", "results are not stored"))]


def test_trained_refuses_bad_arguments(memo):
    with pytest.raises(ValueError, match="The 'name' parameter of trained must be lower-case"):
        cache.trained("My Model", {}, memo.build, memo.train)
    with pytest.raises(TypeError, match="The 'build' parameter of trained must be callable. Got 3 instead."):
        cache.trained("x", {}, 3, memo.train)
    with pytest.raises(ValueError, match="The 'device' parameter of trained"):
        cache.trained("x", {}, memo.build, memo.train, device="tpu")
    with pytest.raises(TypeError, match="must return a dict or None"):
        cache.trained("x", {}, memo.build, lambda net: [1.0], device="cpu")


_RACER = """
import sys, time, torch
from torch import nn
from udl import cache

def build():
    return nn.Linear(2, 1)

def train(net):
    with open(sys.argv[1], "a") as log:
        log.write("trained\\n")
    time.sleep(1.0)  # long enough for the other process to arrive while this one trains
    with torch.no_grad():
        net.weight.fill_(7.0)
    return {"by": sys.argv[2]}

model, record = cache.trained("racer", {"steps": 1}, build, train, device="cpu")
print(record["by"], model.weight.sum().item())
"""


def test_concurrent_processes_train_once(tmp_path):
    import subprocess
    import sys

    log = tmp_path / "log.txt"
    env = {**os.environ, "UDL_DATA_DIR": str(tmp_path / "data")}
    runs = [subprocess.Popen([sys.executable, "-c", _RACER, str(log), name], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for name in ("first", "second")]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err for _, err in outputs]
    assert log.read_text().count("trained") == 1  # the second process waited and read the first one's file
    printed = {out.split()[0] for out, _ in outputs}
    assert len(printed) == 1 and all(out.split()[1] == "14.0" for out, _ in outputs)
