"""``udl serve``: the gallery as a local web app where each figure's parameters are a form.

A reader changes a figure's parameters in the browser, presses *Recompute*, watches
the progress and sees the new picture and checks above the previous ones. Values are
validated exactly as ``udl figure --set`` validates them (the figure's declared types,
ranges and ``requires``), and computations go through :func:`udl.runner.run_figure`'s
cache, so asking twice for the same values costs nothing the second time.

The computations run in worker processes (``spawn``; one by default, so one figure at
a time), each fed one job at a time over a pipe. A worker reports the progress of the
figure's bars (:meth:`udl.runner.Run.progress`); cancelling a running job terminates
its worker and a fresh one takes the next job.

JSON API (form values are strings, as on the command line)::

    POST /api/figures/<id>/jobs     -> 202 {"job": "<job>"}  or 400 {"error": "<one line>"}
    GET  /api/jobs/<job>            -> {"state": "queued|running|done|failed|cancelled",
                                        "progress": 0..1, "message": ..., "record": {...}, "image": URL}
    POST /api/jobs/<job>/cancel     -> the job's state
    GET  /api/figures/<id>/jobs     -> this session's jobs of a figure, newest first

Each finished job writes ``<out>/jobs/<job>.png`` and ``<out>/jobs/<job>.json``.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import traceback
import uuid
from collections import deque
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from udl.registry import PRESETS, UnknownFigure, get, load_all, sort_key
from udl.validate import check_choice, check_int

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
MAX_QUEUED = 64  # jobs waiting at once; more are refused (HTTP 429) rather than piled up
_JOB_ID = re.compile(r"^[0-9a-f]{16}$")
_SERVED = {".png", ".json", ".html", ".css", ".js", ".svg"}  # files of the output folder the app serves


# --------------------------------------------------------------------------- the worker process
def _report_progress(conn, job_id: str) -> None:
    """Make :meth:`udl.runner.Run.progress` bars send ``(n, total, desc)`` to the server (in a worker)."""
    import os

    import threading

    from tqdm.std import tqdm

    from udl.runner import Run

    class Reporting(tqdm):
        def display(self, msg=None, pos=None):  # called by tqdm at most every mininterval seconds
            try:
                conn.send(("progress", job_id, {"n": self.n, "total": self.total, "desc": self.desc or ""}))
            except (OSError, ValueError):  # the server went away: the computation goes on, unreported
                pass
            return True

    def progress(self, iterable=None, **kwargs):
        kwargs.update(leave=False, disable=False, file=open(os.devnull, "w"))  # noqa: SIM115 - closed with the bar
        kwargs.setdefault("mininterval", 0.2)
        return Reporting(iterable, **kwargs)

    Reporting.set_lock(threading.RLock())  # not tqdm's multiprocessing lock: a cancelled worker leaks none
    Run.progress = progress


def _worker(conn, out: str) -> None:
    """A worker process: compute the jobs received on ``conn`` one at a time until ``None`` or EOF."""
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the server stops us
    os.environ.setdefault("MPLBACKEND", "Agg")
    from udl.cache import atomic_write
    from udl.runner import failure_record, one_line_warnings, record, run_figure

    one_line_warnings()
    load_all()  # import every figure now, while no job waits
    folder = Path(out) / "jobs"
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        job_id, fig_id, preset, seed, device, overrides = task
        conn.send(("running", job_id, None))
        _report_progress(conn, job_id)
        start = time.perf_counter()
        try:
            result = run_figure(fig_id, preset, seed=seed, device=device, overrides=overrides, cache=True)
            import matplotlib.pyplot as plt

            fig = result.plot()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
            plt.close(fig)
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / f"{job_id}.png", buf.getvalue())
            rec = {**record(result), "job": job_id}
            kind = "done"
        except Exception as error:  # noqa: BLE001 - a failing figure is a failed job, never a dead worker
            rec = {**failure_record(fig_id, preset, seed, error, time.perf_counter() - start), "job": job_id}
            kind = "failed"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / f"{job_id}.json", json.dumps(rec, indent=1).encode())
        except OSError:  # the record still reaches the page
            pass
        conn.send((kind, job_id, rec))


# --------------------------------------------------------------------------- jobs
@dataclass
class Job:
    """One requested computation of a figure, and what is known of it so far."""

    id: str
    figure: str
    overrides: dict[str, str]  # the submitted values (strings), as ``--set`` would take them
    params: dict[str, Any]  # the validated values the figure computes with
    created: float = field(default_factory=time.time)
    state: str = "queued"
    message: str = "waiting for the worker"
    progress: float = 0.0
    started: float | None = None
    finished: float | None = None
    expected: float | None = None  # seconds, for the progress estimate when the figure shows no bar
    bar: dict | None = None  # the last progress bar reported: n, total, desc
    record: dict | None = None
    cancel_requested: bool = False

    def to_json(self) -> dict:
        progress = self.progress
        if self.state == "running":
            progress = self._running_progress()
        elif self.state == "done":
            progress = 1.0
        out = {"job": self.id, "figure": self.figure, "state": self.state, "progress": round(progress, 4),
               "message": self.message, "params": self.params, "overrides": self.overrides,
               "created": self.created, "started": self.started, "finished": self.finished}
        if self.record is not None:
            out["record"] = self.record
        if self.state == "done":
            out["image"] = f"/jobs/{self.id}.png"
        return out

    def _running_progress(self) -> float:
        bar = self.bar
        if bar and bar.get("total"):
            return min(max(bar["n"] / bar["total"], 0.0), 1.0)
        if self.expected and self.started:  # no bar: elapsed over the recorded time, never 1 before the end
            return min((time.time() - self.started) / self.expected, 0.95)
        return 0.0


class JobManager:
    """A queue of jobs and ``workers`` worker processes that compute them in order.

    Each worker has a thread in this process that hands it the next queued job and
    listens to its reports. Workers start with the first job; :meth:`close` stops them.
    """

    def __init__(self, out: Path, preset: str, seed: int, device: str, workers: int):
        self.out, self.preset, self.seed, self.device = out, preset, seed, device
        self._cond = threading.Condition()
        self._jobs: dict[str, Job] = {}
        self._queue: deque[str] = deque()
        self._slots = [_Slot(self, i) for i in range(workers)]
        self._started = False
        self.closed = False

    # --- requests
    def submit(self, fig_id: str, overrides: dict[str, str], params: dict) -> Job:
        job = Job(uuid.uuid4().hex[:16], fig_id, overrides, params, expected=self._expected(fig_id))
        with self._cond:
            if self.closed:
                raise RuntimeError("the server is shutting down")
            if len(self._queue) >= MAX_QUEUED:
                raise OverflowError(f"{MAX_QUEUED} computations are already waiting; cancel some or wait")
            self._jobs[job.id] = job
            self._queue.append(job.id)
            self._cond.notify_all()
        self.start()
        return job

    def start(self) -> None:
        """Start the workers now (they import torch and every figure: seconds) instead of with the first job."""
        with self._cond:
            if self._started or self.closed:
                return
            self._started = True
        for slot in self._slots:
            slot.start()

    def job(self, job_id: str) -> Job | None:
        with self._cond:
            return self._jobs.get(job_id)

    def jobs(self, fig_id: str | None = None) -> list[Job]:
        """This session's jobs (of one figure), newest first."""
        with self._cond:
            jobs = [j for j in self._jobs.values() if fig_id is None or j.figure == fig_id]
        return sorted(jobs, key=lambda j: j.created, reverse=True)

    def snapshot(self, job_id: str) -> dict | None:
        with self._cond:
            job = self._jobs.get(job_id)
            return None if job is None else job.to_json()

    def cancel(self, job_id: str) -> dict | None:
        """Cancel a queued job, or stop the worker computing a running one; a finished job is left as it is."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state == "queued":
                self._queue.remove(job.id)
                self._finish(job, "cancelled", "cancelled before it started")
                return job.to_json()
            if job.state != "running":
                return job.to_json()
            job.cancel_requested = True
            job.message = "cancelling"
            slot = next((s for s in self._slots if s.job is job), None)
        if slot is not None:
            slot.stop_worker()
        with self._cond:  # the slot's thread marks it cancelled; wait for that briefly
            self._cond.wait_for(lambda: job.state != "running", timeout=10)
            return job.to_json()

    def close(self) -> None:
        """Stop the workers (running jobs are cancelled) and their threads."""
        with self._cond:
            self.closed = True
            for job_id in list(self._queue):
                self._finish(self._jobs[job_id], "cancelled", "the server stopped")
            self._queue.clear()
            for job in self._jobs.values():
                if job.state == "running":
                    job.cancel_requested = True
            self._cond.notify_all()
        for slot in self._slots:
            slot.close()

    # --- used by the slots' threads (under self._cond)
    def _next(self, slot: _Slot) -> Job | None:
        with self._cond:
            self._cond.wait_for(lambda: self.closed or self._queue)
            if self.closed:
                return None
            job = self._jobs[self._queue.popleft()]
            job.state, job.started, job.message = "running", time.time(), "starting"
            slot.job = job
            return job

    def _finish(self, job: Job, state: str, message: str, record: dict | None = None) -> None:
        job.state, job.message, job.finished = state, message, time.time()
        if record is not None:
            job.record = record
        self._cond.notify_all()

    def _expected(self, fig_id: str) -> float | None:
        """Seconds the figure took at this preset (udl.schedule's estimate where it is installed)."""
        try:
            from udl.schedule import expected_seconds
        except ImportError:
            return None
        try:
            return float(expected_seconds([fig_id], self.preset, self.out)[fig_id])
        except Exception:  # noqa: BLE001 - an estimate only
            return None


class _Slot:
    """One worker process and the thread in the server that feeds it."""

    def __init__(self, manager: JobManager, index: int):
        self.manager, self.index = manager, index
        self.job: Job | None = None
        self._lock = threading.RLock()  # guards the process and the pipe: a cancel never falls between check and send
        self._process = None
        self._conn = None
        self._thread = threading.Thread(target=self._loop, name=f"udl-serve-worker-{index}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _spawn(self) -> None:
        ctx = get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_worker, args=(child, str(self.manager.out)), daemon=True,
                              name=f"udl-serve-worker-{self.index}")
        process.start()
        child.close()  # only the worker holds its end: its death reads as EOF here
        self._process, self._conn = process, parent

    def _loop(self) -> None:
        m = self.manager
        with self._lock:
            self._spawn()
        while True:
            job = m._next(self)
            if job is None:
                return
            try:
                with self._lock:
                    if job.cancel_requested:
                        raise EOFError
                    if self._process is None or not self._process.is_alive():
                        self._spawn()
                    conn = self._conn
                    conn.send((job.id, job.figure, m.preset, m.seed, m.device, dict(job.overrides)))
                while True:
                    kind, job_id, payload = conn.recv()
                    with m._cond:
                        if job_id != job.id:
                            continue
                        if kind == "running":
                            job.message = "computing"
                        elif kind == "progress":
                            job.bar = payload
                            total = f"/{payload['total']}" if payload.get("total") else ""
                            job.message = f"{payload['desc'] or 'progress'} {payload['n']}{total}".strip()
                        else:
                            error = payload.get("error", "")
                            m._finish(job, kind, "done" if kind == "done" else error, payload)
                            break
            except (EOFError, OSError):  # the worker stopped: cancelled, or it crashed
                with m._cond:
                    if job.cancel_requested:
                        m._finish(job, "cancelled", "cancelled while computing")
                    else:
                        code = self._process.exitcode if self._process is not None else None
                        m._finish(job, "failed", f"the worker process stopped (exit code {code})")
                self._discard()
                if not m.closed:  # a fresh worker gets ready while the reader looks at the cancelled job
                    with self._lock:
                        self._spawn()
            except Exception as error:  # noqa: BLE001 - the job fails, the server goes on
                with m._cond:
                    m._finish(job, "failed", f"{type(error).__name__}: {error}")
                traceback.print_exc()
            finally:
                self.job = None

    def stop_worker(self) -> None:
        """Terminate the worker (it is computing a job being cancelled); the next job starts a fresh one."""
        with self._lock:
            process = self._process
            if process is not None and process.is_alive():
                process.terminate()
                process.join(5)
                if process.is_alive():
                    process.kill()
                    process.join(5)

    def _discard(self) -> None:
        with self._lock:
            self.stop_worker()
            if self._conn is not None:
                self._conn.close()
            self._process = self._conn = None

    def close(self) -> None:
        process, conn = self._process, self._conn
        if process is not None and process.is_alive() and self.job is None and conn is not None:
            try:
                conn.send(None)  # an idle worker ends by itself
                process.join(3)
            except OSError:
                pass
        self.stop_worker()
        if self._thread.is_alive():
            self._thread.join(5)


# --------------------------------------------------------------------------- the web app
def _templates():
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(loader=PackageLoader("udl", "templates"), autoescape=select_autoescape(["html"]))


def _read_record(out: Path, fig_id: str) -> dict | None:
    try:
        rec = json.loads((out / f"{fig_id}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("id") == fig_id else None


def _stand_in(spec, preset: str, seed: int) -> dict:
    """The record shown for a figure not computed in ``out`` yet: its words and the preset's values."""
    from udl.registry import to_jsonable

    return {"id": spec.id, "title": spec.title, "chapter": spec.chapter, "caption": spec.caption, "notes": "",
            "preset": preset, "seed": seed, "params": to_jsonable(spec.params[preset]), "metrics": {}, "checks": [],
            "seconds": 0.0, "ok": False, "status": "queued", "module": spec.module, "function": spec.function}


_RESULTS = re.compile(r'<div id="results"[^>]*>')


def create_app(out: str | Path = "udl-out", *, preset: str = "tiny", seed: int = 0, device: str = "auto",
               workers: int = 1):
    """The ``udl serve`` web app (a Flask app) over the records and pictures in ``out``.

    Args:
        out: the gallery's output folder (created if missing); job pictures go to ``out/jobs``.
        preset: the preset whose values the forms start from and the jobs complete.
        seed: the seed of every job.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``, for the jobs.
        workers: worker processes, i.e. figures computed at once (default 1).

    Returns:
        A :class:`flask.Flask` app; ``app.extensions["udl.serve"]`` is its :class:`JobManager`
        (call its ``close()`` to stop the workers).

    Raises:
        ValueError: a bad argument (one line), e.g. ``out`` where no file can be written.
    """
    from flask import Flask, abort, jsonify, request, send_from_directory

    from udl.cache import writable_folder
    from udl.devices import resolve_device

    owner = "create_app"
    check_choice(preset, "preset", owner, PRESETS)
    seed = check_int(seed, "seed", owner, minimum=0, maximum=2**32 - 1)
    workers = check_int(workers, "workers", owner, minimum=1, maximum=64)
    resolve_device(device, owner=owner)
    out = writable_folder(out, "out", owner).resolve()
    manager = JobManager(out, preset, seed, device, workers)
    env = _templates()
    app = Flask("udl.serve")
    app.extensions["udl.serve"] = manager

    def spec_or_404(fig_id: str, api: bool):
        try:
            return get(fig_id)
        except UnknownFigure as error:
            if api:
                response = jsonify(error=str(error))
                response.status_code = 404
                abort(response)
            abort(404, description=str(error))

    def same_origin() -> None:
        """Refuse a POST sent by another site's page (the app changes state: it starts computations)."""
        origin = request.headers.get("Origin")
        if origin and origin.split("://", 1)[-1] != request.host:
            response = jsonify(error="requests from other sites are refused")
            response.status_code = 403
            abort(response)

    def ordered_ids() -> list[str]:
        return sorted(load_all(), key=sort_key)

    sources: dict = {}  # udl.sources' blocks, by figure id, found once per server

    def shown_record(spec) -> dict:
        return _read_record(out, spec.id) or _stand_in(spec, preset, seed)

    @app.get("/")
    @app.get("/index.html")
    def index():
        from udl.gallery import render_index, status_of, summarize

        records = [shown_record(spec) for spec in load_all().values()]
        done = [r for r in records if status_of(r) in ("passed", "failed")]
        return render_index(records, summarize(done, preset, 0.0), out=out)

    @app.get("/favicon.ico")
    def favicon():
        return "", 204

    def figure_page(fig_id: str):
        from udl.gallery import render_figure_page

        spec = spec_or_404(fig_id, api=False)
        ids = ordered_ids()
        k = ids.index(spec.id)
        html = render_figure_page(shown_record(spec), spec=spec, prev=ids[k - 1] if k > 0 else None,
                                  next=ids[k + 1] if k + 1 < len(ids) else None, interactive=True, order=ids,
                                  sources=sources, out=out)
        previous = [j.to_json() for j in manager.jobs(spec.id) if j.state in ("done", "failed")]
        if previous:  # this session's results, newest first, as the page's script adds them
            shown = env.get_template("serve_results.html").render(jobs=previous, figure=spec.id)
            html = _RESULTS.sub(lambda m: m.group(0) + shown, html, count=1)
        return html

    @app.get("/<path:name>")
    def files(name: str):
        if name.endswith(".html") and "/" not in name:
            return figure_page(name[: -len(".html")])
        if Path(name).suffix not in _SERVED:
            abort(404)
        return send_from_directory(out, name, max_age=0)

    @app.post("/api/figures/<fig_id>/jobs")
    def submit(fig_id: str):
        same_origin()
        spec = spec_or_404(fig_id, api=True)
        values = request.get_json(silent=True) if request.is_json else request.form.to_dict()
        if not isinstance(values, dict):
            return jsonify(error="send the parameters as form fields or a JSON object"), 400
        overrides = {str(k): v if isinstance(v, str) else json.dumps(v) if isinstance(v, bool) else
                     ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in values.items()}
        try:
            params = spec.resolve(preset, overrides)  # the same validation as --set, `requires` included
        except (ValueError, TypeError) as error:
            return jsonify(error=str(error)), 400
        try:
            job = manager.submit(spec.id, overrides, params)
        except OverflowError as error:
            return jsonify(error=str(error)), 429
        except RuntimeError as error:
            return jsonify(error=str(error)), 503
        return jsonify(job=job.id, state=job.state, url=f"/api/jobs/{job.id}"), 202

    @app.get("/api/figures/<fig_id>/jobs")
    def figure_jobs(fig_id: str):
        spec = spec_or_404(fig_id, api=True)
        return jsonify(jobs=[j.to_json() for j in manager.jobs(spec.id)])

    def job_or_404(job_id: str) -> dict:
        snap = manager.snapshot(job_id) if _JOB_ID.match(job_id) else None
        if snap is None:
            response = jsonify(error=f"no job {job_id!r} in this session")
            response.status_code = 404
            abort(response)
        return snap

    @app.get("/api/jobs/<job_id>")
    def job_state(job_id: str):
        return jsonify(job_or_404(job_id))

    @app.post("/api/jobs/<job_id>/cancel")
    def cancel(job_id: str):
        same_origin()
        job_or_404(job_id)
        return jsonify(manager.cancel(job_id))

    return app


def serve(app, host: str = "127.0.0.1", port: int = 8765, *, ready=None) -> None:
    """Serve ``app`` (threaded, werkzeug) until interrupted; ``ready(url)`` is called once it listens.

    The workers are stopped on the way out, also after SIGTERM (when called from the main thread).
    """
    import signal
    import socket

    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, code="-", size="-"):  # the page polls its jobs: log only what went wrong
            if not str(code).startswith(("2", "3")):
                super().log_request(code, size)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    # bind here: werkzeug's own bind exits the process when the port is taken; this raises OSError instead
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family) as bound:
        server = make_server(host, bound.getsockname()[1], app, threaded=True, fd=bound.fileno(),
                             request_handler=Quiet)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, interrupted) if main_thread else None
    url = f"http://{host if ':' not in host else f'[{host}]'}:{server.socket.getsockname()[1]}/"
    if ready is not None:
        ready(url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        app.extensions["udl.serve"].close()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


__all__ = ["create_app", "serve", "JOB_STATES"]
