"""``udl serve`` in Chromium: change a parameter, recompute, see the new checks above the previous ones.

The server runs as a subprocess (``udl serve --port <free> --out <tmp> --preset tiny``, its own caches),
as a reader starts it; the page is driven through the DOM hooks the site and the server promise.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest
from browser_helpers import free_port, private_env, udl_command, wait_for_http

from udl.registry import get

FIGURE = "3.1"  # quick at tiny: a grid through ReLU; parameters n (int >= 2) and span (float)
WAIT = 120_000  # ms: the first job waits for the worker to import torch, slow on a busy machine


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The base URL of a running ``udl serve``; stopped (Ctrl-C) at the end."""
    root = tmp_path_factory.mktemp("serve")
    port = free_port()
    log = root / "serve.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen(udl_command("serve", "--port", str(port), "--out", str(root / "out"),
                                            "--preset", "tiny"),
                                env=private_env(root), stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        start = time.perf_counter()
        wait_for_http(url + "/", proc, log)
        print(f"udl serve answered after {time.perf_counter() - start:.1f} s")
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _open_figure(page, url: str, fig_id: str) -> None:
    """From the index, follow the figure's link, as a reader would."""
    page.goto(url + "/")
    page.locator(f'[id="fig-{fig_id}"] a.figure-link').first.click()
    page.wait_for_url(re.compile(re.escape(f"/{fig_id}.html") + "$"))
    page.wait_for_selector("#params-form")


def _recompute(page, url: str, fig_id: str, **values) -> dict:
    """Fill the form, press Recompute, wait for the new result; the job's final state from the API."""
    before = page.locator("#results section.result").count()
    for name, value in values.items():
        page.fill(f'#params-form [name="{name}"]', str(value))
    with page.expect_response(lambda r: r.url.endswith(f"/api/figures/{fig_id}/jobs")
                              and r.request.method == "POST") as posted:
        page.click("#recompute")
    answer = posted.value
    assert answer.status == 202, answer.text()
    job = answer.json()["job"]
    page.wait_for_function("n => document.querySelectorAll('#results section.result').length === n",
                           arg=before + 1, timeout=WAIT)
    state = page.request.get(f"{url}/api/jobs/{job}").json()
    assert state["state"] == "done", state
    return state


def test_recompute_shows_the_new_checks_above_the_previous(server, page):
    spec = get(FIGURE)
    _open_figure(page, server, FIGURE)
    for name in spec.params["tiny"]:
        assert page.locator(f'#params-form [name="{name}"]').count() == 1, name
    assert page.input_value('#params-form [name="n"]') == str(spec.params["tiny"]["n"])
    # the same page as the static gallery's, with the form added
    assert page.inner_text("#command").strip().startswith(f"udl figure {FIGURE} --preset tiny --seed 0")
    assert page.locator("#sources details.source").count() >= 1

    first = _recompute(page, server, FIGURE, n=101)
    assert first["record"]["params"]["n"] == 101 and first["record"]["ok"]
    newest = page.locator("#results section.result").first
    rows = newest.locator(".checks tr.pass, .checks tr.fail, .checks tr.untested")
    assert rows.count() == len(first["record"]["checks"]) >= 1
    assert newest.locator(".checks tr.fail").count() == 0
    for check in first["record"]["checks"]:
        assert check["claim"] in newest.inner_text()
    image = newest.locator("img")
    image.evaluate("img => img.complete && img.naturalWidth > 0 ? true : new Promise((ok, bad) => "
                   "{ img.onload = () => ok(true); img.onerror = () => bad(new Error('image failed')); })")
    first_src = image.get_attribute("src")

    second = _recompute(page, server, FIGURE, n=51, span=2.5)
    assert second["record"]["params"] == {"n": 51, "span": 2.5}
    results = page.locator("#results section.result")
    assert results.count() == 2
    assert results.nth(1).locator("img").get_attribute("src") == first_src  # the previous result kept, below
    assert results.nth(0).locator("img").get_attribute("src") != first_src
    assert results.nth(0).locator(".checks tr.pass").count() == len(second["record"]["checks"])
    for k in range(2):
        assert results.nth(k).locator("img").evaluate("img => img.complete && img.naturalWidth > 0")


def test_a_bad_value_shows_the_one_line_error(server, page, expected_console_errors):
    # Chromium logs every 4xx answer to a fetch in the console: the refusals asked for here, and no other
    refusal = rf"status of 400 \(BAD REQUEST\) http://127\.0\.0\.1:\d+/api/figures/{re.escape(FIGURE)}/jobs$"
    expected_console_errors.append(refusal)
    spec = get(FIGURE)
    _open_figure(page, server, FIGURE)
    for bad in ("1", "many"):
        try:
            spec.resolve("tiny", {"n": bad})
        except ValueError as error:
            expected = str(error)
        else:
            pytest.fail(f"n={bad} should be refused")
        assert "\n" not in expected
        before = page.locator("#results section.result").count()
        page.fill('#params-form [name="n"]', bad)
        page.click("#recompute")
        page.wait_for_function("m => document.getElementById('form-error').textContent.trim() === m",
                               arg=expected, timeout=10_000)
        assert page.is_visible("#form-error")
        assert page.locator("#results section.result").count() == before  # nothing computed
    _recompute(page, server, FIGURE, n=11)
    assert not page.locator("#form-error").inner_text().strip()  # a good value clears the error


def _wait_state(page, url: str, job: str, states: set[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = page.request.get(f"{url}/api/jobs/{job}").json()
        if state["state"] in states:
            return state
        assert time.monotonic() < deadline, f"job {job} still {state['state']} after {timeout:.0f} s"
        time.sleep(0.2)


def test_cancel_stops_a_long_computation_and_the_next_one_runs(server, page):
    _open_figure(page, server, "3.5")
    before = page.locator("#results section.result").count()
    # eight wide networks, each refined by 2000 L-BFGS steps on 10,000 points: minutes of work
    long = {"widths": "57,58,59,60,61,62,63,64", "n_train": "10000", "steps": "2000"}
    for name, value in long.items():
        page.fill(f'#params-form [name="{name}"]', value)
    with page.expect_response(lambda r: r.url.endswith("/api/figures/3.5/jobs")
                              and r.request.method == "POST") as posted:
        page.click("#recompute")
    assert posted.value.status == 202, posted.value.text()
    job = posted.value.json()["job"]
    _wait_state(page, server, job, {"running"}, timeout=WAIT / 1000)
    assert page.is_enabled("#cancel") and page.is_visible("#job-progress")
    page.click("#cancel")
    state = _wait_state(page, server, job, {"cancelled", "done", "failed"}, timeout=30)
    assert state["state"] == "cancelled", state
    page.wait_for_function("() => document.getElementById('cancel').disabled"
                           " && !document.getElementById('recompute').disabled")
    assert page.locator("#results section.result").count() == before  # nothing shown for a cancelled job
    # a fresh worker takes the next computation
    done = _recompute(page, server, "3.5", widths="3,6,12", n_train=101, steps=100)
    assert done["record"]["params"]["widths"] == [3, 6, 12] and done["record"]["ok"]
    assert page.locator("#results section.result").first.locator(".checks tr.pass").count() == len(
        done["record"]["checks"])
