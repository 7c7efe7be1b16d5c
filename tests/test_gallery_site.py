"""The gallery as a site: the index (contents, search hooks, filters, cards), a page per figure,
the progressive index, merging into an existing folder and relative paths in failures."""

import json
import os
import re
import sys
from html import unescape
from html.parser import HTMLParser

import pytest

from udl import gallery
from udl.cli import main
from udl.registry import REGISTRY, Check, Result, chapter_of, figure, load_all


# --------------------------------------------------------------------------- helpers
class _Elements(HTMLParser):
    """Every start tag as (tag, attributes), and the text inside elements with an id."""

    def __init__(self):
        super().__init__()
        self.tags, self.text, self._open = [], {}, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs and tag not in ("img", "input", "meta", "link", "br"):
            self._open.append((tag, attrs["id"]))
            self.text.setdefault(attrs["id"], "")

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        for _, ident in self._open:
            self.text[ident] += data


def parse(html):
    p = _Elements()
    p.feed(html)
    return p


def by_id(doc, ident):
    found = [(t, a) for t, a in doc.tags if a.get("id") == ident]
    assert len(found) == 1, f"{len(found)} elements with id {ident!r}"
    return found[0]


def record(fig_id, *, ok=True, metrics=None, checks=None, params=None, preset="tiny", seed=0, **extra):
    return {"id": fig_id, "title": f"Title of {fig_id}", "chapter": chapter_of(fig_id), "preset": preset, "seed": seed,
            "params": params or {},
            "metrics": metrics if metrics is not None else {"value": 1.5},
            "checks": checks if checks is not None else [{"claim": "a claim", "measured": 1.0, "expected": "1 ± 0",
                                                          "ok": ok}],
            "seconds": 0.25, "device": "cpu", "caption": f"The caption of {fig_id} mentions zebras.", "notes": "",
            "module": "udl.figures.x", "function": "f", "cached": False, "ok": ok, **extra}




# --------------------------------------------------------------------------- the index
def test_index_has_the_search_and_filter_hooks_and_a_card_per_figure():
    records = [record("3.1"), record("3.2", ok=False), record("C.1"),
               {**record("4.1"), "status": "queued", "checks": [], "metrics": {}}]
    html = gallery.render_index(records, gallery.summarize(records[:3], "tiny", 1.0))
    doc = parse(html)
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in doc.tags
    assert by_id(doc, "search")[1]["type"] == "search"
    chapter_options = [a["value"] for t, a in doc.tags if t == "option" and "value" in a][:4]
    assert chapter_options == ["all", "3", "4", "C"]
    status_options = [a["value"] for t, a in doc.tags if t == "option"][4:]
    assert status_options == ["all", "passed", "failed", "queued"]
    assert doc.text["shown-count"] == "4"
    cards = {a["id"]: a for t, a in doc.tags if t == "article"}
    assert list(cards) == ["fig-3.1", "fig-3.2", "fig-4.1", "fig-C.1"]
    assert [(c["data-id"], c["data-chapter"], c["data-status"]) for c in cards.values()] == [
        ("3.1", "3", "passed"), ("3.2", "3", "failed"), ("4.1", "4", "queued"), ("C.1", "C", "passed")]
    assert "zebras" in cards["fig-3.1"]["data-search"] and "a claim" in cards["fig-3.1"]["data-search"]
    links = [a["href"] for t, a in doc.tags if t == "a" and a.get("class") == "figure-link"]
    assert links == ["3.1.html", "3.2.html", "4.1.html", "C.1.html"]
    images = [a for t, a in doc.tags if t == "img"]
    assert [a["src"] for a in images] == ["3.1.png", "3.2.png", "C.1.png"]  # the queued figure has no picture yet
    for a in images:
        assert a["loading"] == "lazy" and int(a["width"]) > 0 and int(a["height"]) > 0
        assert a["alt"].startswith("Figure ") and "zebras" in a["alt"]
    assert 'id="progress"' not in html and 'id="eta"' not in html  # no run going
    assert "<script>" in html and "http://" not in html and "https://" not in html  # inline, no network


def test_index_shows_every_metric_without_a_dangling_separator():
    metrics = {f"m{i:02d}": i + 0.5 for i in range(15)}
    html = gallery.render_index([record("3.1", metrics=metrics)], gallery.summarize([record("3.1")], "tiny", 1.0))
    line = re.search(r"Metrics: (.*?)</p>", html, re.S).group(1)
    assert [re.sub("<.*?>", "", part).strip() for part in line.split("; ")] == [
        f"m{i:02d} = {i + 0.5:.4g}" for i in range(15)]


def test_index_while_running_has_a_progress_bar_and_an_estimate():
    records = [record("3.1"), {**record("3.2"), "status": "running"}]
    html = gallery.render_index(records, gallery.summarize(records[:1], "tiny", 0.0), progress=(1, 2, 125.0))
    doc = parse(html)
    assert by_id(doc, "progress")[1]["max"] == "2" and by_id(doc, "progress")[1]["value"] == "1"
    assert doc.text["eta"] == "about 2 min left"
    assert [a["data-status"] for t, a in doc.tags if t == "article"] == ["passed", "running"]


def test_image_sizes_are_read_from_the_pictures(tmp_path):
    from PIL import Image

    Image.new("RGB", (321, 123)).save(tmp_path / "3.1.png")
    html = gallery.render_index([record("3.1")], gallery.summarize([record("3.1")], "tiny", 1.0), out=tmp_path)
    img = next(a for t, a in parse(html).tags if t == "img")
    assert (img["width"], img["height"]) == ("321", "123")


# --------------------------------------------------------------------------- a figure's page
def test_figure_page_has_checks_metrics_params_command_links_and_no_form(fakes):
    spec = REGISTRY["99.square"]
    metrics = {f"m{i}": float(i) for i in range(14)}
    checks = [{"claim": "holds", "measured": 1.0, "expected": "> 0", "ok": True},
              {"claim": "breaks", "measured": 2.0, "expected": "< 1", "ok": False},
              {"claim": "cannot tell", "measured": "not tested", "expected": "needs more", "ok": None, "tested": False}]
    rec = record("99.square", metrics=metrics, checks=checks, seed=3, ok=False,
                 params={"n": 7, "scale": 1.0, "flag": True, "name": "a", "sizes": [3, 4]})
    html = gallery.render_figure_page(rec, spec=spec, prev="99.broken", next="99.false",
                                      order=["3.1", "99.broken", "99.square", "99.false", "C.1"])
    doc = parse(html)
    assert by_id(doc, "figure-image")[1]["src"] == "99.square.png"
    rows = [a.get("class") for t, a in doc.tags if t == "tr"]
    checks_table = html.split('id="checks"')[1].split("</table>")[0]
    assert [c for c in re.findall(r'<tr class="(\w+)"', checks_table)] == ["pass", "fail", "untested"]
    metric_names = re.findall(r"<tr><td><code>(m\d+)</code>", html.split('id="metrics"')[1].split("</table>")[0])
    assert metric_names == list(metrics)  # all 14, in order
    params = unescape(html.split('id="params"')[1].split("</table>")[0])
    assert re.findall(r"<td><code>(\w+)</code></td>", params) == ["n", "scale", "flag", "name", "sizes"]
    for allowed in ("an int in [1, 1000]", "a list of 1 to 4 ints in [1, 8]", "one of 'a', 'b'"):
        assert allowed in params
    assert params.count('class="changed"') == 3 and rows.count("changed") == 3  # n, flag and sizes
    assert doc.text["command"] == ("udl figure 99.square --preset tiny --seed 3 "
                                   "--set n=7 --set flag=true --set sizes=3,4")
    assert by_id(doc, "prev")[1]["href"] == "99.broken.html" and by_id(doc, "next")[1]["href"] == "99.false.html"
    assert by_id(doc, "prev-chapter")[1]["href"] == "3.1.html" and by_id(doc, "next-chapter")[1]["href"] == "C.1.html"
    assert by_id(doc, "record")[1]["href"] == "99.square.json"
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in doc.tags
    by_id(doc, "sources")
    for hook in ("params-form", "recompute", "cancel", "job-progress", "form-error", "results"):
        assert f'id="{hook}"' not in html


def test_reproducing_command_gives_the_same_record(fakes, capsys):
    assert main(["figure", "99.square", "--preset", "tiny", "--out", "o", "--seed", "4",
                 "--set", "n=9", "scale=2.5", "name=b"]) == 0
    rec = json.loads((fakes / "o" / "99.square.json").read_text())
    command = gallery.reproduce_command(rec)
    assert command == "udl figure 99.square --preset tiny --seed 4 --set n=9 --set scale=2.5 --set name=b"
    assert main(command.split()[1:] + ["--out", "again"]) == 0
    again = json.loads((fakes / "again" / "99.square.json").read_text())
    assert again["params"] == rec["params"] and again["metrics"] == rec["metrics"]
    capsys.readouterr()


def test_interactive_page_has_a_form_with_every_parameter(fakes):
    rec = record("99.square", params={"n": 5, "scale": 1.0, "flag": False, "name": "b", "sizes": [1, 2]})
    html = gallery.render_figure_page(rec, interactive=True)
    doc = parse(html)
    form = html.split('<form id="params-form"')[1].split("</form>")[0]
    fields = {a["name"]: (t, a) for t, a in parse("<form" + form).tags if "name" in a}
    assert list(fields) == ["n", "scale", "flag", "name", "sizes"]
    assert fields["n"][1]["value"] == "5" and fields["scale"][1]["value"] == "1.0"
    assert fields["flag"][1]["type"] == "checkbox" and "checked" not in fields["flag"][1]
    assert fields["name"][0] == "select" and fields["sizes"][1]["value"] == "1,2"
    assert [a.get("selected", "no") for t, a in parse(form).tags if t == "option"] == ["no", None]  # 'b' selected
    for hook in ("recompute", "cancel", "job-progress", "form-error", "results"):
        by_id(doc, hook)
    assert html.index('id="params-form"') < html.index('id="results"')
    assert "/api/figures/" in html and "/api/jobs/" in html


def test_sources_are_shown_with_file_and_line():
    pytest.importorskip("udl.sources")
    spec = load_all()["3.1"]
    html = gallery.render_figure_page(record("3.1"), spec=spec, prev=None, next="3.2")
    section = html.split('<section id="sources">')[1].split("</section>")[0]
    assert section.count('<details class="source"') >= 1
    assert re.search(r"udl/figures/ch03\.py:\d+", section) and 'class="highlight"' in section
    assert "relu_curve" in section and "<span" in section
    doc = parse(html)
    assert "href" not in by_id(doc, "prev")[1] and by_id(doc, "next")[1]["href"] == "3.2.html"


# --------------------------------------------------------------------------- building
def test_gallery_writes_a_page_per_figure_and_failures_name_no_machine_folder(fakes, capsys):
    assert main(["gallery", "--preset", "tiny", "--chapter", "99", "--out", "g", "--jobs", "1"]) == 1
    out = fakes / "g"
    for fig_id in ("99.broken", "99.false", "99.square"):
        assert (out / f"{fig_id}.html").exists()
    page = unescape((out / "99.broken.html").read_text())
    assert "this figure is broken on purpose" in page and 'File "udl/runner.py", line' in page
    roots = {str(fakes), os.getcwd(), sys.prefix, os.path.dirname(gallery.__file__), os.path.expanduser("~")}
    for text in (page, (out / "99.broken.json").read_text(), (out / "index.html").read_text()):
        for root in roots:
            assert root not in text
        assert not re.search(r'File "/', text)
    doc = parse((out / "index.html").read_text())
    assert doc.text["shown-count"] == "3" and 'id="progress"' not in (out / "index.html").read_text()
    capsys.readouterr()


def test_the_index_is_written_before_the_first_figure_finishes(fakes):
    seen = []

    @figure("98.peek", title="Peek", caption="Reads the index while it runs.", params={"tiny": {}, "full": {}})
    def peek(p, run):
        seen.append((fakes / "g" / "index.html").read_text())
        return Result(metrics={"ok": 1})

    @peek.plot
    def _(r):
        from udl import style

        return style.subplots()[0]

    @peek.checks
    def _(r):
        return [Check.holds("ran", True, True)]

    try:
        summary = gallery.build_gallery("tiny", fakes / "g", jobs=1, chapters=[98, 99])
    finally:
        REGISTRY.pop("98.peek", None)
    assert summary["figures"] == 4 and len(seen) == 1
    doc = parse(seen[0])
    states = {a["data-id"]: a["data-status"] for t, a in doc.tags if t == "article"}
    assert states["98.peek"] in ("queued", "running")  # "running" is written within INDEX_INTERVAL
    assert set(states) == {"98.peek", "99.broken", "99.false", "99.square"}
    assert by_id(doc, "progress")[1]["max"] == "4" and doc.text["eta"].endswith(" left")
    final = parse((fakes / "g" / "index.html").read_text())
    assert {a["data-id"]: a["data-status"] for t, a in final.tags if t == "article"} == {
        "98.peek": "passed", "99.broken": "failed", "99.false": "failed", "99.square": "passed"}


def test_the_first_view_lists_every_registered_figure_without_importing_them():
    listed = {f["id"]: f for f in gallery.listed_figures()}
    specs = load_all()
    assert set(listed) == set(specs)
    assert all(listed[i]["title"] == s.title and listed[i]["caption"] == s.caption for i, s in specs.items())


def test_a_run_for_some_chapters_keeps_the_other_records_and_drops_stale_ones(fakes, capsys):
    out = fakes / "g"
    assert main(["gallery", "--preset", "tiny", "--chapter", "99", "--out", str(out), "--jobs", "1"]) == 1
    stale = record("42.gone")
    (out / "42.gone.json").write_text(json.dumps(stale))
    (out / "notes.json").write_text("[1, 2]")  # not a record
    status = main(["gallery", "--preset", "tiny", "--chapter", "C", "--out", str(out), "--jobs", "1"])
    assert status == 1  # the kept 99.broken and 99.false still fail
    summary = json.loads((out / "summary.json").read_text())
    assert summary["figures"] == 6 and summary["computed_figures"] == 3
    assert sorted(summary["failed_figures"]) == ["99.broken", "99.false"]
    doc = parse((out / "index.html").read_text())
    cards = [a["data-id"] for t, a in doc.tags if t == "article"]
    assert cards == ["99.broken", "99.false", "99.square", "C.1", "C.2", "C.3"]
    assert doc.text["shown-count"] == "6"
    page = parse((out / "99.square.html").read_text())
    assert by_id(page, "next")[1]["href"] == "C.1.html" and by_id(page, "next-chapter")[1]["href"] == "C.1.html"
    c1 = parse((out / "C.1.html").read_text())
    assert by_id(c1, "prev")[1]["href"] == "99.square.html" and by_id(c1, "prev-chapter")[1]["href"] == "99.broken.html"
    assert "42.gone" not in (out / "index.html").read_text()
    capsys.readouterr()


def test_sources_are_stored_so_a_second_gallery_does_not_recompute_them(tmp_path, monkeypatch):
    sources = pytest.importorskip("udl.sources")
    monkeypatch.setenv("UDL_CACHE_DIR", str(tmp_path / "cache"))
    spec = load_all()["3.1"]
    first = gallery.render_figure_page(record("3.1"), spec=spec, sources={})
    stored = list((tmp_path / "cache" / "sources").glob("3.1-*.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text())[0]["kind"] == "computation"

    def no_more(*args, **kwargs):
        raise AssertionError("figure_sources called again")

    monkeypatch.setattr(sources, "figure_sources", no_more)
    assert gallery.render_figure_page(record("3.1"), spec=spec, sources={}) == first


def test_index_writes_are_throttled_and_the_last_request_is_written():
    calls = []
    index = gallery._Throttled(lambda: calls.append(len(calls)), interval=60.0)
    for _ in range(5):
        index.request()
    assert calls == [0]  # the first at once, the others wait for one timer
    pending = index.started
    index.close()  # cancels the pending write
    pending.join()
    assert calls == [0]
    index = gallery._Throttled(lambda: calls.append(len(calls)), interval=0.01)
    index.request()
    index.request()
    index.started.join()  # the timer writes the state of the later requests
    assert calls == [0, 1, 2]
    index.close()
    index.request()
    assert calls == [0, 1, 2]  # nothing after close


def test_an_interrupted_gallery_leaves_an_index_that_no_longer_announces_a_run(fakes):
    @figure("98.stop", title="Stop", caption="Interrupted.", params={"tiny": {}, "full": {}})
    def stop(p, run):
        raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            gallery.build_gallery("tiny", fakes / "g", jobs=1, chapters=[98])
    finally:
        REGISTRY.pop("98.stop", None)
    html = (fakes / "g" / "index.html").read_text()
    assert 'data-id="98.stop"' in html and 'id="progress"' not in html
