"""Where udl keeps what it computes once and reuses: one module for every disk cache.

- :func:`cache_dir`: figure results (``$UDL_CACHE_DIR``, else ``~/.cache/udl/figures``).
- :func:`data_dir`: generated data, tokenizers and trained models (``$UDL_DATA_DIR``,
  else ``~/.cache/udl/data``).
- :func:`atomic_write`: every file udl writes appears whole or not at all.
- :func:`source_digest` and :func:`settings_digest`: names that change with the code
  and the settings that produced a file, so that a stale file is never read.
- :func:`trained`: a model that several figures share is trained once per machine.
- :func:`writable_folder`: an output folder, created and tried before any work.

A cache is a saving, never a condition: a cache folder that cannot be read or written
(a file in its place, a read-only disk, an entry replaced by a folder) costs a warning,
once per process and folder, and the computation goes on without it.

The rule of :func:`trained`: a caller always gets a *fresh* model, its own to modify or
train further; nothing it does reaches another caller. Files are read with
``torch.load(..., weights_only=True)`` (tensors and plain containers only: a cache file
cannot run code), and a damaged file is trained again.

Example::

    >>> model, record = trained("tiny-fit", {"steps": 3}, lambda: nn.Linear(2, 1),
    ...                         lambda m: {"losses": [1.0, 0.5, 0.2]}, device="cpu")
    >>> record["losses"][-1], model.training
    (0.2, False)
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import re
import tempfile
import warnings
from collections import OrderedDict
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterable

import torch
from torch import nn

from udl import __version__
from udl.devices import resolve_device

__all__ = ["cache_dir", "data_dir", "atomic_write", "atomic_save", "source_digest", "settings_digest", "trained"]

_FORMAT = 1  # of the trained-model files: {"model": state_dict, "record": dict}
_MEMORY_SIZE = 8  # trained models whose weights stay in memory (least recently used dropped first)
_MEMORY: OrderedDict[str, tuple[dict, dict]] = OrderedDict()  # key -> (CPU state_dict, record)
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_WARNED: set[tuple[str, str]] = set()  # (folder, "read" or "write") already warned about in this process


# --------------------------------------------------------------------------- folders
def cache_dir() -> Path:
    """Where figure results are cached: ``$UDL_CACHE_DIR``, else ``~/.cache/udl/figures``."""
    env = os.environ.get("UDL_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "udl" / "figures"


def data_dir() -> Path:
    """Where generated data, tokenizers and trained models live: ``$UDL_DATA_DIR``, else ``~/.cache/udl/data``."""
    env = os.environ.get("UDL_DATA_DIR")
    return Path(env) if env else Path.home() / ".cache" / "udl" / "data"


def _in_the_way(path: Path, *, folder: bool) -> str | None:
    """What stands where udl needs ``path`` (a folder if ``folder``, else a file), in words; None if nothing."""
    try:
        if not folder and path.is_dir():
            return f"{path} is a folder"
        for above in (path, *path.parents) if folder else path.parents:
            if above.exists() and not above.is_dir():
                return f"{above} is a file"
    except OSError:  # a folder we may not look into: the system's reason will do
        pass
    return None


def writable_folder(path: str | os.PathLike, name: str, owner: str) -> Path:
    """Create the folder ``path`` (and its parents) if missing and check that a file can be written in it.

    Called before any computation whose results go there, so that a bad folder costs one
    line at once instead of a traceback after the work.

    Args:
        path: the folder.
        name, owner: the parameter and the function or command that received it, for the message.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: the folder cannot be created or written (it is a file, lies under a
            file, or the system refuses), in udl's one-line template.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"The {name!r} parameter of {owner} must be a path. Got {path!r} instead.")
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        why = _in_the_way(folder, folder=True) or f"it cannot be created: {error.strerror or error}"
    else:
        try:
            with tempfile.TemporaryFile(dir=folder):  # writing a file is the only sure test (root ignores modes)
                return folder
        except OSError as error:
            why = f"no file can be created in it: {error.strerror or error}"
    raise ValueError(f"The {name!r} parameter of {owner} must be a folder where files can be written. "
                     f"Got {str(path)!r} instead ({why}).")


def warn_unusable(kind: str, verb: str, path: Path, error: OSError) -> None:
    """Warn that a cache cannot be read or written, once per process for each folder and verb.

    Args:
        kind: what the cache holds, e.g. ``"figure cache"``.
        verb: ``"read"`` or ``"written"``.
        path: the file that could not be read or written.
        error: the system's error.
    """
    key = (str(path.parent), verb)
    if key in _WARNED:
        return
    _WARNED.add(key)
    why = _in_the_way(path, folder=False) or error.strerror or str(error)
    then = "computing afresh" if verb == "read" else "results are not stored"
    warnings.warn(f"the {kind} {path.parent} cannot be {verb} ({why}); {then}", stacklevel=2)


def read_entry(path: Path, kind: str) -> bytes | None:
    """The bytes of the cache file ``path``; None when it is missing, or unreadable (with a warning).

    Args:
        path: the file.
        kind: what the cache holds, for the warning, e.g. ``"figure cache"``.
    """
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:  # a folder in its place, no permission...: compute afresh
        warn_unusable(kind, "read", path, error)
        return None


# --------------------------------------------------------------------------- writing
def atomic_write(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half of it.

    The bytes go to a temporary file in the same folder, which is then renamed over
    ``path`` with ``os.replace`` (atomic on POSIX and Windows). A failure removes the
    temporary file and leaves any previous ``path`` as it was. The folder is created
    if missing; the file is readable by everyone (mode 0o644).

    Args:
        path: the file to write.
        data: its whole content.
        fsync: flush the bytes to the disk before the rename, so that even a power
            cut leaves the old file or the new one (checkpoints). Default: False.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"The 'path' parameter of atomic_write must be a path. Got {path!r} instead.")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"The 'data' parameter of atomic_write must be bytes. Got {type(data).__name__} instead.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())  # the bytes are on disk before the name points at them
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; udl's caches and outputs are readable by all
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_save(obj, path: str | os.PathLike, *, fsync: bool = False) -> Path:
    """``torch.save(obj)`` to ``path`` through :func:`atomic_write` (same arguments)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write(path, buffer.getvalue(), fsync=fsync)


# --------------------------------------------------------------------------- names that follow the code
def _files(source) -> list[tuple[str, Path]]:
    """``(name, file)`` pairs of one source: a module, a file, or a folder's ``.py`` files by relative name."""
    if isinstance(source, ModuleType):
        source = getattr(source, "__file__", None)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"The 'sources' parameter of source_digest must hold modules, files or folders. "
                        f"Got {source!r} instead.")
    path = Path(source)
    if path.is_dir():
        return [(str(p.relative_to(path)), p) for p in sorted(path.rglob("*.py"))]
    return [(path.name, path)]


def source_digest(*sources: ModuleType | str | os.PathLike) -> str:
    """16 hex digits of SHA-256 over the names and contents of source files: any edit changes it.

    Args:
        *sources: modules (their file), files, or folders (every ``.py`` file under
            them, in sorted order, named by their path relative to the folder).

    Returns:
        The digest, e.g. ``"3f9c0a1b2d4e5f60"``.
    """
    digest = hashlib.sha256()
    for source in sources:
        for name, path in _files(source):
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def settings_digest(settings: dict, *sources: ModuleType | str | os.PathLike) -> str:
    """16 hex digits that change with ``settings`` (as JSON), udl's version and the given sources.

    The name of a file that these settings and this code produce: equal settings and
    code give the same name, anything else another.
    """
    if not isinstance(settings, dict):
        raise TypeError(f"The 'settings' parameter of settings_digest must be a dict. Got {settings!r} instead.")
    code = source_digest(*sources)
    try:
        blob = json.dumps({"settings": settings, "udl": __version__, "code": code}, sort_keys=True)
    except TypeError:
        raise TypeError(f"The 'settings' parameter of settings_digest must hold JSON values only. "
                        f"Got {settings!r} instead.") from None
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- trained models
def trained(name: str, settings: dict, build: Callable[[], nn.Module], train: Callable[[nn.Module], dict | None],
            *, sources: Iterable[ModuleType | str | os.PathLike] = (), device: str | torch.device = "auto",
            disk: bool = True) -> tuple[nn.Module, dict]:
    """A model trained once per machine and settings; every call returns a fresh copy.

    The first call builds the model, moves it to ``device`` and trains it (``train``
    returns a record of JSON-like values: losses, timings...); its weights and record are
    kept in memory and written to ``data_dir()/models/<name>-<key>.pt``. Later calls, in
    this process or another, build the model again and load the weights. The key hashes
    ``settings``, the device type, torch's and udl's versions and ``sources`` (the code
    that builds and trains the model): a change to any of them trains afresh. A file
    that cannot be read (damaged, from another layout) is trained again and replaced.

    Processes that ask for the same model at once (``udl gallery --jobs 2``) train it
    once: the first holds a lock beside the file while it trains, the others wait and
    then read its file.

    ``build`` and ``train`` run with torch's global generator forked (and CUDA's, when
    training there): whatever they draw, the caller's generator is left as it was, and
    the result does not depend on what ran before. Seed dropout inside ``train``.

    Args:
        name: the file's prefix, lower case (``"gpt-python-docs"``).
        settings: everything the training depends on besides the code (JSON values).
        build: makes the untrained model; must give the same architecture every call.
        train: trains the model it receives in place; returns a dict or None.
        sources: modules, files or folders whose source the result depends on. Default: none.
        device: where to train and where the returned model lives. Default: "auto".
        disk: read and write the file (False: this process's memory only). Default: True.

    Returns:
        ``(model, record)``: a new model with the trained weights, on ``device`` and in
        eval mode, and a copy of the record.
    """
    owner = "trained"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"The 'name' parameter of {owner} must be lower-case letters, digits, '.', '-' or '_'. "
                         f"Got {name!r} instead.")
    for arg, value in (("build", build), ("train", train)):
        if not callable(value):
            raise TypeError(f"The {arg!r} parameter of {owner} must be callable. Got {value!r} instead.")
    if not isinstance(disk, bool):
        raise TypeError(f"The 'disk' parameter of {owner} must be a bool. Got {disk!r} instead.")
    dev = resolve_device(device, owner)
    if not isinstance(settings, dict):
        raise TypeError(f"The 'settings' parameter of {owner} must be a dict. Got {settings!r} instead.")
    key = settings_digest({"name": name, "settings": settings, "device": dev.type, "torch": torch.__version__,
                           "format": _FORMAT}, *sources)
    path = data_dir() / "models" / f"{name}-{key}.pt"
    entry = _MEMORY.get(key)
    if entry is None and disk:
        entry = _read(path, build)
    if entry is None:
        # one process trains, the others wait for its file (gallery --jobs, pytest -n)
        with _exclusive(path) if disk else contextlib.nullcontext():
            entry = _read(path, build) if disk else None
            if entry is None:
                entry = _train(build, train, dev, owner)
                if disk:
                    try:
                        atomic_save({"model": entry[0], "record": entry[1]}, path)
                    except OSError as error:  # an unwritable cache only costs the next process a retraining
                        warn_unusable("model cache", "written", path, error)
    _MEMORY[key] = entry
    _MEMORY.move_to_end(key)
    while len(_MEMORY) > _MEMORY_SIZE:
        _MEMORY.popitem(last=False)
    with torch.random.fork_rng(devices=[]):
        model = build()
    model.load_state_dict(entry[0])  # copies the values: the memory keeps its own
    return model.to(dev).eval(), copy.deepcopy(entry[1])


def _train(build, train, dev: torch.device, owner: str) -> tuple[dict, dict]:
    """Build and train a model with torch's generators forked and gradients on (a caller may hold
    ``torch.no_grad()``: the first to ask for a cached model trains it); its CPU ``(state_dict, record)``."""
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), torch.enable_grad():
        model = build().to(dev)
        record = train(model) or {}
    if not isinstance(record, dict):
        raise TypeError(f"The 'train' parameter of {owner} must return a dict or None. Got {record!r} instead.")
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, record


@contextlib.contextmanager
def _exclusive(path: Path):
    """Hold an exclusive lock beside ``path`` (``<path>.lock``) for the block, across processes.

    POSIX only (``fcntl.flock``, released by the system if the process dies); where it
    is missing or the folder is read-only the block runs unlocked: two processes may
    then both train, which costs time, never correctness (writes are atomic).
    """
    try:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path.with_name(path.name + ".lock"), "a")
    except (ImportError, OSError):
        handle = None
    if handle is None:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(path: Path, build: Callable[[], nn.Module]) -> tuple[dict, dict] | None:
    """The stored ``(state_dict, record)``, or None when the file is missing, unreadable (a warning) or damaged."""
    data = read_entry(path, "model cache")
    if data is None:
        return None
    try:
        saved = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        state, record = saved["model"], saved["record"]
        with torch.random.fork_rng(devices=[]):
            build().load_state_dict(state)  # the weights fit the model: names and shapes
        if not isinstance(record, dict):
            raise TypeError("the record is not a dict")
        return state, record
    except Exception:  # noqa: BLE001 - any damage means: train again
        return None
