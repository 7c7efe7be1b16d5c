"""The ``udl`` command: list, compute and gather the book's figures.

    udl list [--chapter N] [--json]
    udl figure ID [ID ...] [--preset tiny|full] [--out DIR] [--set KEY=VALUE ...]
               [--seed N] [--device auto|cpu|cuda] [--no-cache]
    udl gallery [--preset tiny|full] [--out DIR] [--jobs auto|N] [--chapter N] [--no-cache]
    udl serve [--host 127.0.0.1] [--port 8765] [--out DIR] [--preset tiny|full] [--workers 1]

Exit status: 0 when every figure ran and every check held, 1 when a figure or a
check failed, 2 on bad usage (one line on stderr naming the valid choices), 130 when
interrupted, 141 when the reader of the output went away (``udl list | head -1``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from udl.registry import PRESETS, UnknownFigure, get, load_all, sort_key

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141  # 128 + SIGINT, 128 + SIGPIPE: what a shell reports for either


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block, exit status 2
        raise UsageError(message)


def _chapter(text: str) -> int | str:
    text = text.strip()
    if text.isdigit():
        return int(text)
    if text.upper() in ("A", "B", "C"):
        return text.upper()
    raise argparse.ArgumentTypeError(f"expected a chapter number or appendix letter, got {text!r}")


def _seed(text: str) -> int:
    from udl.runner import MAX_SEED

    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an int in [0, {MAX_SEED}], got {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return value


def _jobs(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return _positive(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive int or 'auto', got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="udl", description="Understanding Deep Learning, executable.")
    parser.add_argument("--version", action="version", version=f"udl {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="list the figures: id, chapter, state, the code behind each, title")
    p.add_argument("--chapter", type=_chapter, help="only this chapter (a number, or C for the appendix)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--out", default="udl-out", help="where records are read from for the state column")

    def common(q, preset_default="full"):
        q.add_argument("--preset", choices=PRESETS, default=preset_default,
                       help="tiny: seconds, for tests; full: faithful to the book (default)")
        q.add_argument("--out", default="udl-out", help="output folder (default udl-out)")
        q.add_argument("--seed", type=_seed, default=0, help="seed of every random number (default 0)")
        q.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
        q.add_argument("--no-cache", action="store_true", help="recompute even when a stored result exists")

    p = sub.add_parser("figure", help="compute, draw and check figures: DIR/<id>.png and DIR/<id>.json")
    p.add_argument("ids", nargs="+", metavar="ID")
    common(p)
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override a figure parameter (typed), e.g. --set steps=500 lr=0.1")

    p = sub.add_parser("gallery", help="every figure, with DIR/index.html")
    common(p)
    p.add_argument("--jobs", type=_jobs, default="auto",
                   help="figures computed in parallel, one process each (default auto: one per usable CPU)")
    p.add_argument("--chapter", type=_chapter, action="append", help="only this chapter (repeatable)")

    p = sub.add_parser("serve", help="a local web app: every figure's parameters as a form, recomputed on request")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--out", default="udl-out", help="the gallery's folder: its pictures and records (default udl-out)")
    p.add_argument("--preset", choices=PRESETS, default="tiny",
                   help="the values the forms start from (default tiny: seconds per figure)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of every computation (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--workers", type=_positive, default=1, help="figures computed at once (processes; default 1)")
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in [0, 65535], got {text!r}")
    return value


def _version() -> str:
    from udl import __version__

    return __version__


def _parse_sets(items: list[str]) -> dict[str, str]:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value
    return overrides


def _state(out: Path, fig_id: str) -> str:
    try:
        rec = json.loads((out / f"{fig_id}.json").read_text())
        return f"{'passed' if rec.get('ok') else 'FAILED'} ({rec.get('preset')})"
    except (OSError, ValueError):
        return "not run"


def _check_chapters(chapters: list) -> None:
    """A usage error naming the first chapter without figures and, in book order, those with figures."""
    from udl.gallery import listed_figures  # the @figure declarations, read without importing the modules

    known = list(dict.fromkeys(f["chapter"] for f in listed_figures()))  # book order
    if any(c not in known for c in chapters):  # figures registered elsewhere (a plug-in, a test): ask the registry
        known = list(dict.fromkeys(get(i).chapter for i in sorted(load_all(), key=sort_key)))
    missing = [c for c in chapters if c not in known]
    if missing:
        raise UsageError(f"no figures in chapter {missing[0]}; chapters with figures: {', '.join(map(str, known))}")


def cmd_list(args) -> int:
    if args.chapter is not None:
        _check_chapters([args.chapter])
    specs = [s for s in load_all().values() if args.chapter is None or s.chapter == args.chapter]
    out = Path(args.out)
    rows = [{"id": s.id, "title": s.title, "chapter": s.chapter, "state": _state(out, s.id), "gpu": s.gpu,
             "module": s.module, "function": s.function} for s in specs]
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    # the code behind each figure, e.g. ch03:shallow_1d for udl.figures.ch03.shallow_1d
    code = [f"{r['module'].removeprefix('udl.figures.')}:{r['function']}" for r in rows]
    width, code_width = max(len(r["id"]) for r in rows), max(map(len, code))
    for r, where in zip(rows, code):
        print(f"{r['id']:<{width}}  {str(r['chapter']):>2}  {r['state']:<16}  {where:<{code_width}}  {r['title']}")
    return EXIT_OK


def _validate_ids(ids: list[str]) -> list[str]:
    for fig_id in ids:
        try:
            get(fig_id)
        except UnknownFigure as error:
            raise UsageError(str(error)) from None
    return list(dict.fromkeys(ids))


def _check_out(out: str, command: str) -> None:
    """The output folder exists (created if missing) and takes files: checked before any work."""
    from udl.cache import writable_folder

    try:
        writable_folder(out, "--out", f"udl {command}")
    except ValueError as error:
        raise UsageError(str(error)) from None


def _check_device(device: str) -> None:
    from udl.devices import cpu_threads, resolve_device

    try:
        resolve_device(device, owner="udl")
        cpu_threads()  # a bad $UDL_NUM_THREADS is a usage error, found before any work
    except ValueError as error:
        raise UsageError(str(error)) from None


def cmd_figure(args) -> int:
    from udl.runner import one_line_warnings, run_and_write

    one_line_warnings()
    ids = _validate_ids(args.ids)
    overrides = _parse_sets(args.set)
    _check_device(args.device)
    for fig_id in ids:  # bad keys and values are usage errors, found before any work
        try:
            get(fig_id).resolve(args.preset, overrides)
        except ValueError as error:
            raise UsageError(str(error)) from None
    _check_out(args.out, "figure")
    status = EXIT_OK
    for fig_id in ids:
        rec = run_and_write(fig_id, args.preset, args.seed, args.device, overrides, not args.no_cache, args.out)
        status = max(status, _report(rec))
    return status


def _report(rec: dict) -> int:
    from udl.registry import tally

    counts = tally(rec["checks"])
    verdict = "ok" if rec["ok"] else "FAILED"
    cached = ", cached" if rec.get("cached") else ""
    untested = f", {counts['not_tested']} not tested at this preset" if counts["not_tested"] else ""
    print(f"{rec['id']:<14} {verdict:<6} {counts['passed']}/{counts['passed'] + counts['failed']} checks"
          f"{untested}  {rec['seconds']:.2f} s{cached}")
    for check in rec["checks"]:
        if check.get("tested") is False:
            print(f"    not tested: {check['claim']}: {check['expected']}")
        elif not check["ok"]:
            print(f"    failed: {check['claim']}: measured {check['measured']}, expected {check['expected']}")
    if rec.get("error"):
        print(f"    error: {rec['error']}")
    return EXIT_OK if rec["ok"] else EXIT_FAILED


def cmd_gallery(args) -> int:
    from udl.gallery import build_gallery
    from udl.runner import one_line_warnings

    one_line_warnings()
    _check_device(args.device)
    chapters = args.chapter or None
    if chapters:
        _check_chapters(chapters)
    _check_out(args.out, "gallery")
    from udl.schedule import resolve_jobs

    summary = build_gallery(preset=args.preset, out=args.out, jobs=resolve_jobs(args.jobs), chapters=chapters,
                            seed=args.seed, device=args.device, cache=not args.no_cache)
    untested = f", {summary['not_tested']} not tested at this preset" if summary["not_tested"] else ""
    print(f"{summary['figures']} figures, {summary['passed']} checks passed, {summary['failed']} failed{untested}, "
          f"{summary['seconds']:.1f} s -> {Path(args.out) / 'index.html'}")
    return EXIT_OK if summary["ok"] else EXIT_FAILED


def cmd_serve(args) -> int:
    from udl.runner import one_line_warnings
    from udl.serve import create_app, serve

    one_line_warnings()
    _check_device(args.device)
    _check_out(args.out, "serve")
    app = create_app(args.out, preset=args.preset, seed=args.seed, device=args.device, workers=args.workers)

    def ready(url: str) -> None:
        app.extensions["udl.serve"].start()  # the workers import torch and the figures while the reader looks
        print(f"udl serve: {url} (figures from {args.out}, preset {args.preset}; Ctrl-C stops)", flush=True)

    try:
        serve(app, args.host, args.port, ready=ready)  # returns on Ctrl-C or SIGTERM: not a failure
    except OSError as error:  # the port is taken, or the address is not this machine's
        app.extensions["udl.serve"].close()
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
    except KeyboardInterrupt:
        pass
    print("udl serve: stopped", file=sys.stderr)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``udl`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        status = {"list": cmd_list, "figure": cmd_figure, "gallery": cmd_gallery,
                  "serve": cmd_serve}[args.command](args)
        sys.stdout.flush()  # a reader that went away shows here, not as a message at exit
        return status
    except UsageError as error:
        print(f"udl: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("udl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `udl list | head -1`: stop quietly, as `cat` or `ls` would (the signal module's
        # note on SIGPIPE). What was computed is written; what is left unsaid goes nowhere.
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _discard_stdout() -> None:
    """Point stdout at the null device, so that Python's flush at exit finds no closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced by something without a descriptor
        pass


if __name__ == "__main__":
    sys.exit(main())
