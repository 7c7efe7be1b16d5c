"""``udl serve``: pages, the form of every figure, the JSON API, validation as --set, jobs, cancel.

One app (one worker process) serves the whole module: the worker imports torch and the
figures once. The computations are tiny figures (3.5, 3.1) and 6.7 with 1000 batch
orders, cancelled long before it ends.
"""

import json
import time
from html.parser import HTMLParser

import pytest

from udl.cli import main
from udl.registry import get, load_all
from udl.serve import create_app


class Elements(HTMLParser):
    """Every start tag of a page: (tag, attributes as a dict)."""

    def __init__(self, html: str):
        super().__init__()
        self.tags = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def by_id(self, ident):
        found = [(t, a) for t, a in self.tags if a.get("id") == ident]
        assert len(found) == 1, f"#{ident}: {len(found)} elements"
        return found[0]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = create_app(tmp_path_factory.mktemp("serve") / "out", preset="tiny")
    app.extensions["udl.serve"].start()  # the worker warms up while the page tests run
    yield app
    app.extensions["udl.serve"].close()


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def wait(client, job, until=("done", "failed", "cancelled"), timeout=120, what=lambda s: True):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/api/jobs/{job}").get_json()
        if state["state"] in until and what(state):
            return state
        time.sleep(0.1)
    raise AssertionError(f"job {job} still {state['state']} ({state['message']}) after {timeout} s")


def submit(client, fig_id, **values):
    response = client.post(f"/api/figures/{fig_id}/jobs", data={k: str(v) for k, v in values.items()})
    assert response.status_code == 202, response.get_json()
    return response.get_json()["job"]


# --------------------------------------------------------------------------- pages
def test_the_index_links_every_figure_to_its_page(client):
    page = client.get("/")
    assert page.status_code == 200
    links = {a["href"] for t, a in Elements(page.get_data(as_text=True)).tags if t == "a"}
    assert {f"{fig_id}.html" for fig_id in load_all()} <= links


def figures_with_each_kind_of_parameter() -> list[str]:
    """3.5, 6.7 and the first figure with each kind of parameter (bool, str, choice, float list)."""
    def kinds(spec):
        for name, v in spec.params["tiny"].items():
            limit = spec.limits.get(name)
            yield ("choice" if limit is not None and limit.choices and not isinstance(v, list) else
                   f"list of {type(v[0]).__name__}" if isinstance(v, list) and v else type(v).__name__)

    chosen = {"3.5": None, "6.7": None}
    for fig_id, spec in load_all().items():
        for kind in kinds(spec):
            if kind not in chosen.values():
                chosen.setdefault(fig_id, kind)
    return list(chosen)


def test_figure_pages_have_one_input_per_parameter_with_the_presets_value(client):
    ids = figures_with_each_kind_of_parameter()
    assert len(ids) >= 5
    for fig_id in ids:
        spec = get(fig_id)
        page = client.get(f"/{fig_id}.html")
        assert page.status_code == 200, fig_id
        dom = Elements(page.get_data(as_text=True))
        assert dom.by_id("params-form")[1]["data-figure"] == fig_id
        inputs = {a["name"]: (t, a) for t, a in dom.tags if t in ("input", "select") and "name" in a}
        assert set(inputs) == set(spec.params["tiny"]), fig_id
        for name, default in spec.params["tiny"].items():
            tag, attrs = inputs[name]
            limit = spec.limits.get(name)
            if isinstance(default, bool):
                assert attrs["type"] == "checkbox" and ("checked" in attrs) == default
            elif limit is not None and limit.choices and not isinstance(default, list):
                assert tag == "select", (fig_id, name)
            else:
                assert spec.resolve("tiny", {name: attrs["value"]})[name] == default, (fig_id, name)  # parses back
        for hook in ("recompute", "cancel", "job-progress", "form-error", "results", "params", "command", "sources"):
            dom.by_id(hook)


def test_unknown_figures_and_jobs_are_404(client):
    assert client.get("/99.nothing.html").status_code == 404
    answer = client.post("/api/figures/99.nothing/jobs", data={})
    assert answer.status_code == 404 and "unknown figure" in answer.get_json()["error"]
    assert client.get("/api/jobs/0123456789abcdef").status_code == 404
    assert client.get("/api/jobs/..%2F..%2Fetc").status_code == 404
    assert client.get("/../pyproject.toml").status_code == 404


# --------------------------------------------------------------------------- validation
def cli_error(capsys, fig_id, setting):
    """The one line `udl figure ID --set KEY=VALUE` prints (it validates before any work)."""
    assert main(["figure", fig_id, "--preset", "tiny", "--set", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("udl: error: ") and "\n" not in err
    return err.removeprefix("udl: error: ")


@pytest.mark.parametrize("fig_id, key, value", [
    ("3.5", "n_train", "1"),  # below the range
    ("3.5", "steps", "many"),  # not an int
    ("3.5", "widths", "3,0"),  # a list element out of range
    ("3.5", "depth", "3"),  # no such parameter
    ("6.7", "last", "500"),  # `requires`: last <= steps + 1
])
def test_a_bad_value_is_400_with_the_message_of_set(client, capsys, fig_id, key, value):
    answer = client.post(f"/api/figures/{fig_id}/jobs", data={key: value})
    assert answer.status_code == 400
    assert answer.get_json() == {"error": cli_error(capsys, fig_id, f"{key}={value}")}


def test_a_post_from_another_site_is_refused(client):
    answer = client.post("/api/figures/3.5/jobs", data={}, headers={"Origin": "http://example.com"})
    assert answer.status_code == 403


def test_create_app_checks_its_arguments(tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ValueError, match=r"^The 'out' parameter of create_app must be a folder"):
        create_app(tmp_path / "a-file")
    with pytest.raises(ValueError, match="The 'preset' parameter of create_app"):
        create_app(tmp_path, preset="huge")
    with pytest.raises(ValueError, match="The 'workers' parameter of create_app"):
        create_app(tmp_path, workers=0)


@pytest.mark.parametrize("argv, words", [
    (["serve", "--port", "70000"], "argument --port: expected a port number in [0, 65535]"),
    (["serve", "--workers", "0"], "argument --workers: expected a positive int"),
    (["serve", "--preset", "huge"], "argument --preset: invalid choice"),
])
def test_serve_usage_errors_are_one_line(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("udl: error: ") and words in err and "\n" not in err


def test_serve_checks_out_before_starting(tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    assert main(["serve", "--out", str(tmp_path / "a-file")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("udl: error: The '--out' parameter of udl serve must be a folder")


def test_a_port_in_use_is_a_usage_error(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"udl: error: cannot listen on 127.0.0.1:{port}: ") and "\n" not in err


def test_udl_serve_answers_on_its_port_and_stops_on_sigterm(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    server = subprocess.Popen([sys.executable, "-m", "udl", "serve", "--port", "0", "--out", str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        line = server.stdout.readline()  # "udl serve: http://127.0.0.1:<port>/ (...)"
        assert line.startswith("udl serve: http://127.0.0.1:"), (line, server.stderr.read())
        url = line.split()[2]
        with urllib.request.urlopen(url + "favicon.ico", timeout=30) as answer:
            assert answer.status == 204
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0 and err.strip().endswith("udl serve: stopped"), err


# --------------------------------------------------------------------------- jobs
def test_a_job_computes_with_the_submitted_value_and_serves_its_picture(app, client):
    job = submit(client, "3.5", n_train=50, widths="3,6")
    state = wait(client, job)
    assert state["state"] == "done" and state["progress"] == 1.0, state["message"]
    rec = state["record"]
    assert rec["id"] == "3.5" and rec["preset"] == "tiny" and rec["job"] == job
    assert rec["params"] == {**get("3.5").params["tiny"], "n_train": 50, "widths": [3, 6]}
    assert rec["checks"] and rec["ok"] and rec["metrics"]["widths"] == [3, 6]
    picture = client.get(state["image"])
    assert picture.status_code == 200 and picture.data[:8] == b"\x89PNG\r\n\x1a\n"
    out = app.extensions["udl.serve"].out
    assert json.loads((out / "jobs" / f"{job}.json").read_text())["params"]["n_train"] == 50
    # the page now shows the result; the same values again come from the cache, newest first
    again = wait(client, submit(client, "3.5", n_train=50, widths="3,6"))
    assert again["state"] == "done" and again["record"]["cached"] and not rec["cached"]
    assert again["record"]["metrics"] == rec["metrics"]
    listed = client.get("/api/figures/3.5/jobs").get_json()["jobs"]
    assert [j["job"] for j in listed][:2] == [again["job"], job]
    page = client.get("/3.5.html").get_data(as_text=True)
    sections = [a["data-job"] for t, a in Elements(page).tags if t == "section" and "result" in a.get("class", "")]
    assert sections[:2] == [again["job"], job]


def test_cancel_a_running_and_a_queued_job_then_the_next_one_runs(client):
    long = submit(client, "6.7", repeats=1000)  # about a minute: 1000 batch orders
    queued = submit(client, "6.7", repeats=999)
    state = wait(client, long, until=("running",), what=lambda s: "batch orders" in s["message"])
    n = int(state["message"].split()[-1].split("/")[0])  # "batch orders 3/1000": the bar's n / total
    assert state["message"].endswith("/1000") and state["progress"] == pytest.approx(n / 1000, abs=1e-4)
    state = client.post(f"/api/jobs/{queued}/cancel").get_json()
    assert state["state"] == "cancelled" and "before it started" in state["message"]
    state = client.post(f"/api/jobs/{long}/cancel").get_json()
    assert state["state"] == "cancelled" and "record" not in state
    assert client.get(f"/api/jobs/{long}").get_json()["state"] == "cancelled"
    after = wait(client, submit(client, "3.1"))  # a fresh worker takes the next job
    assert after["state"] == "done" and after["record"]["ok"]
    assert client.post(f"/api/jobs/{after['job']}/cancel").get_json()["state"] == "done"  # finished: unchanged
