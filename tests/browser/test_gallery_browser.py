"""The static gallery read in Chromium from the file system: images, search, filters, figure pages, links.

One tiny gallery of chapters 3 and 4 is built by ``udl gallery`` in a subprocess (its own caches), into a
folder that already holds a failed record of C.1 (kept by the merge) and a record of a figure that no longer
exists (dropped). The tests then read it as a reader would, through the DOM hooks the site promises.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from browser_helpers import private_env, udl_command

import udl
from udl.registry import load_all, sort_key
from udl.runner import failure_record

CHAPTERS = ("3", "4")

VISIBLE_CARDS = """() => Array.from(document.querySelectorAll('article.card'))
    .filter(c => !c.hidden && c.getClientRects().length > 0).map(c => c.dataset.id)"""


def _fail_inside_udl():
    """A real error raised inside udl's code, so that the traceback holds udl's file paths."""
    load_all()["C.1"].resolve("tiny", {"no_such_parameter": "1"})


@pytest.fixture(scope="module")
def gallery_run(tmp_path_factory):
    """``udl gallery --preset tiny --chapter 3 --chapter 4`` started (not awaited) into a folder with older records.

    Yields the process, the output folder and the time it started.
    """
    root = tmp_path_factory.mktemp("gallery")
    out = root / "out"
    out.mkdir()
    try:
        _fail_inside_udl()
    except ValueError as error:
        failed = failure_record("C.1", "tiny", 0, error, 0.5)
    (out / "C.1.json").write_text(json.dumps(failed))
    stale = failure_record("99.gone", "tiny", 0, RuntimeError("this figure was removed"), 0.1)
    (out / "99.gone.json").write_text(json.dumps(stale))
    # one process: for 7 quick figures a second worker only adds its start (torch's import) to the time
    args = ["gallery", "--preset", "tiny", "--jobs", "1", "--out", str(out)]
    for chapter in CHAPTERS:
        args += ["--chapter", chapter]
    log = root / "gallery.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen(udl_command(*args), env=private_env(root), stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield proc, out, log, time.perf_counter()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def gallery(gallery_run):
    """The finished gallery: its folder and its records by id."""
    proc, out, log, start = gallery_run
    proc.wait(timeout=300)
    print(f"udl gallery --preset tiny --jobs 1 --chapter 3 --chapter 4: {time.perf_counter() - start:.1f} s")
    assert (out / "index.html").exists(), log.read_text()
    records = {}
    for path in out.glob("*.json"):
        rec = json.loads(path.read_text())
        if isinstance(rec, dict) and "checks" in rec and rec.get("id") != "99.gone":
            records[rec["id"]] = rec
    expected = {i for i, s in load_all().items() if str(s.chapter) in CHAPTERS} | {"C.1"}
    assert set(records) == expected, log.read_text()
    assert all(records[i]["ok"] for i in expected - {"C.1"}), log.read_text()
    return out, records


def _open_index(page, out: Path):
    page.goto((out / "index.html").as_uri())
    page.wait_for_selector("article.card")


def _visible(page) -> list[str]:
    return page.evaluate(VISIBLE_CARDS)


def _wait_visible(page, expected: set[str]) -> None:
    """Wait (briefly) for the filter to show exactly ``expected``; then compare, with the ids in the message."""
    try:
        page.wait_for_function(f"(ids) => {{ const v = ({VISIBLE_CARDS})(); return v.length === ids.length "
                               f"&& ids.every(i => v.includes(i)); }}", arg=sorted(expected), timeout=5_000)
    except Exception:  # noqa: BLE001 - the assertion below says what was shown instead
        pass
    assert set(_visible(page)) == expected
    # the filter hides with the `hidden` attribute, and nothing the page styles undoes it
    hidden = page.evaluate("() => Array.from(document.querySelectorAll('article.card'))"
                           ".map(c => [c.dataset.id, c.hidden, c.getClientRects().length === 0])")
    assert all(h == gone for _, h, gone in hidden), hidden
    shown = re.search(r"\d+", page.inner_text("#shown-count"))
    assert shown and int(shown.group()) == len(expected), page.inner_text("#shown-count")


def _wait_loaded(page, selector: str) -> None:
    """Scroll each matching image into view (they load lazily) and wait until it has loaded."""
    images = page.locator(selector)
    for k in range(images.count()):
        image = images.nth(k)
        image.scroll_into_view_if_needed()
        image.evaluate("img => img.complete && img.naturalWidth > 0 ? true : "
                       "new Promise((ok, bad) => { img.onload = () => ok(true); "
                       "img.onerror = () => bad(new Error('image failed: ' + img.src)); })")
        assert image.evaluate("img => img.complete && img.naturalWidth > 0"), image.get_attribute("src")
        if image.get_attribute("width"):  # the declared size is the picture's: no jump when it arrives
            natural = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            declared = [int(image.get_attribute("width")), int(image.get_attribute("height"))]
            assert natural == declared, image.get_attribute("src")


def _claims(rec: dict) -> str:
    return " ".join(str(c.get("claim", "")) for c in rec["checks"])


def _search_word(records: dict, field=lambda rec: rec.get("caption", ""), rest=lambda rec: "") -> tuple | None:
    """A word of one figure's ``field`` (its caption by default) that no other figure's searchable text holds,
    nor the ``rest`` of the same figure's text."""
    def text(rec):
        return " ".join([rec["id"], rec["title"], rec.get("caption", ""), rec.get("notes", ""), _claims(rec)]).lower()

    texts = {i: text(r) for i, r in records.items()}
    for fig_id in sorted(records, key=sort_key):
        for word in re.findall(r"[A-Za-z]{6,}", field(records[fig_id])):
            if word.lower() not in rest(records[fig_id]).lower() and \
                    not any(word.lower() in t for i, t in texts.items() if i != fig_id):
                return fig_id, word
    return None


def test_the_index_fills_in_while_the_gallery_runs(page, gallery_run):
    """Opened as soon as it exists, the index lists every figure with a progress bar and reloads itself to the end.

    (The first test of this file: the others wait for the run to end.)
    """
    proc, out, log, _ = gallery_run
    index = out / "index.html"
    deadline = time.monotonic() + 120
    while not index.exists():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    _open_index(page, out)
    ids = {i for i, s in load_all().items() if str(s.chapter) in CHAPTERS}
    if proc.poll() is None and page.locator("#progress").count():  # not over yet when the page was read
        statuses = page.evaluate("() => Object.fromEntries(Array.from(document.querySelectorAll('article.card'))"
                                 ".map(c => [c.dataset.id, c.dataset.status]))")
        assert set(statuses) == ids | {"C.1"}, statuses  # every figure listed from the start
        assert statuses["C.1"] == "failed" and set(statuses.values()) <= {"queued", "running", "passed", "failed"}
        assert int(page.get_attribute("#progress", "max")) == len(ids)
        assert 0 <= float(page.get_attribute("#progress", "value")) <= len(ids)  # == when read just before the end
        assert page.inner_text("#eta").strip()
        assert page.locator('meta[name="viewport"]').count() == 1
        for fig_id, status in statuses.items():
            if status in ("queued", "running"):  # no picture yet, so no broken image either
                assert page.locator(f'article.card[data-id="{fig_id}"] img').count() == 0
    else:
        print("the run ended before the page was read: its progress was not seen")
    # the page reads itself again until the run ends; wait for that, without reloading it from here
    deadline = time.monotonic() + 300
    while True:
        try:
            done = page.evaluate("() => !document.getElementById('progress') && document.querySelectorAll("
                                 "'article.card[data-status=\"passed\"]').length")
        except Exception:  # noqa: BLE001 - read while the page reloads itself
            done = None
        if done == len(ids):
            break
        assert time.monotonic() < deadline, f"the page did not fill in: {done}\n{log.read_text()}"
        time.sleep(0.25)
    # the run itself ends normally: 0, or 1 when the merged gallery holds a failed figure (C.1 here)
    assert proc.wait(timeout=60) in (0, 1), log.read_text()


def test_index_lists_every_figure_and_every_image_loads(gallery, page):
    out, records = gallery
    _open_index(page, out)
    assert page.locator('meta[name="viewport"]').count() == 1
    cards = page.locator("article.card")
    ids = [cards.nth(k).get_attribute("data-id") for k in range(cards.count())]
    assert sorted(ids) == sorted(records)  # C.1 merged in, the removed figure's record dropped
    for fig_id, rec in records.items():
        card = page.locator(f'article.card[data-id="{fig_id}"]')
        assert card.get_attribute("id") == f"fig-{fig_id}"
        assert card.get_attribute("data-status") == ("passed" if rec["ok"] else "failed")
        assert card.get_attribute("data-chapter") == str(rec["chapter"])
        assert card.locator("a.figure-link").first.get_attribute("href") == f"{fig_id}.html"
        if rec["ok"]:
            assert card.locator(f'img[src="{fig_id}.png"]').count() == 1
    images = page.locator("img")
    assert images.count() >= len(records) - 1
    for k in range(images.count()):
        image = images.nth(k)
        assert image.get_attribute("loading") == "lazy"
        assert int(image.get_attribute("width")) > 0 and int(image.get_attribute("height")) > 0
        alt = image.get_attribute("alt") or ""
        assert len(alt.split()) >= 3, f"alt text {alt!r} does not describe {image.get_attribute('src')}"
    _wait_loaded(page, "img")
    _wait_visible(page, set(records))


def test_search_by_a_word_of_a_caption(gallery, page):
    out, records = gallery
    fig_id, word = _search_word(records)
    _open_index(page, out)
    page.fill("#search", word)
    _wait_visible(page, {fig_id})
    page.fill("#search", word.upper())  # case does not matter
    _wait_visible(page, {fig_id})

    # the notes, the claims checked and the title are searched too: words found only there
    def caption(r):
        return r.get("caption", "")

    def notes(r):
        return r.get("notes", "")

    def title(r):
        return r["title"]

    for field, rest in ((notes, lambda r: caption(r) + " " + title(r)),
                        (_claims, lambda r: caption(r) + " " + title(r) + " " + notes(r)),
                        (title, lambda r: caption(r) + " " + notes(r))):
        found = _search_word(records, field, rest)
        assert found, f"no word of {field.__name__} unique to one figure"
        page.fill("#search", found[1])
        _wait_visible(page, {found[0]})
    page.fill("#search", "zzqxj-no-figure-says-this")
    _wait_visible(page, set())
    page.fill("#search", "")
    _wait_visible(page, set(records))


def test_chapter_and_status_filters(gallery, page):
    out, records = gallery
    _open_index(page, out)
    by_chapter = {}
    for fig_id, rec in records.items():
        by_chapter.setdefault(str(rec["chapter"]), set()).add(fig_id)
    for chapter, ids in by_chapter.items():
        page.select_option("#chapter-filter", chapter)
        _wait_visible(page, ids)
    page.select_option("#chapter-filter", "all")
    _wait_visible(page, set(records))
    failed = {i for i, r in records.items() if not r["ok"]}
    assert failed == {"C.1"}
    page.select_option("#status-filter", "failed")
    _wait_visible(page, failed)
    page.select_option("#status-filter", "passed")
    _wait_visible(page, set(records) - failed)
    page.select_option("#status-filter", "queued")
    _wait_visible(page, set())
    page.select_option("#status-filter", "passed")
    page.select_option("#chapter-filter", "4")  # both filters at once
    _wait_visible(page, by_chapter["4"])
    page.select_option("#status-filter", "all")
    page.select_option("#chapter-filter", "all")
    fig_id, word = _search_word(records)
    page.fill("#search", word)
    page.select_option("#chapter-filter", "C" if records[fig_id]["chapter"] != "C" else "3")
    _wait_visible(page, set())  # search and filter together


def test_filters_survive_a_reload(gallery, page):
    out, records = gallery
    _open_index(page, out)
    chapter4 = {i for i, r in records.items() if str(r["chapter"]) == "4"}
    page.select_option("#chapter-filter", "4")
    _wait_visible(page, chapter4)
    page.reload()
    page.wait_for_selector("article.card", state="attached")  # the first cards stay hidden: chapter 4 only
    assert page.input_value("#chapter-filter") == "4"
    _wait_visible(page, chapter4)


def test_a_figure_page_from_its_card(gallery, page):
    out, records = gallery
    rec = records["3.5"]
    _open_index(page, out)
    page.locator('article.card[data-id="3.5"] a.figure-link').first.click()
    page.wait_for_url(re.compile(r"/3\.5\.html$"))
    assert page.locator('meta[name="viewport"]').count() == 1
    _wait_loaded(page, "#figure-image")
    assert page.get_attribute("#figure-image", "src") == "3.5.png"
    assert rec["caption"][:40] in page.inner_text("body")
    rows = page.locator("#checks tr.pass, #checks tr.fail, #checks tr.untested")
    assert rows.count() == len(rec["checks"])
    for k, check in enumerate(rec["checks"]):
        want = "untested" if check.get("tested") is False else ("pass" if check["ok"] else "fail")
        assert want in rows.nth(k).get_attribute("class").split()
        assert check["claim"] in rows.nth(k).inner_text()
    metrics = page.inner_text("#metrics")
    for name in rec["metrics"]:
        assert name in metrics
    params = page.locator("#params tr")
    text = page.inner_text("#params")
    for name, value in rec["params"].items():
        assert name in text
        row = params.filter(has_text=name).first.inner_text()
        assert all(str(v) in row for v in (value if isinstance(value, list) else [value]))
    assert page.inner_text("#command").strip() == "udl figure 3.5 --preset tiny --seed 0"
    assert page.locator("#params-form, #recompute").count() == 0  # the form needs udl serve: not on the file
    assert page.locator('a[href^="index.html"]').count() >= 1
    sources = page.locator("#sources details.source")
    assert sources.count() >= 2  # the computation and at least one udl.nn function it calls
    summaries = [sources.nth(k).locator("summary").inner_text() for k in range(sources.count())]
    root = Path(udl.__file__).resolve().parents[1]
    for summary in summaries:
        found = re.search(r"(\S+\.py):(\d+)", summary)
        assert found and not found.group(1).startswith("/"), summary
        # "src/udl/..." (a checkout) or "udl/..." (relative to the folder above the package)
        path = next(p for p in (root / found.group(1), root.parent / found.group(1)) if p.exists())
        lines = path.read_text().splitlines()
        assert lines[int(found.group(2)) - 1].lstrip().startswith(("def ", "class ", "@")), summary
    assert any("ch03" in s for s in summaries) and any("udl/nn/" in s for s in summaries), summaries
    page.locator("#sources details.source").first.locator("summary").click()
    assert page.locator("#sources details.source").first.locator("span").count() > 5  # highlighted tokens


def test_prev_next_and_record_links(gallery, page):
    out, records = gallery
    order = sorted(records, key=sort_key)
    k = order.index("3.5")
    page.goto((out / "3.5.html").as_uri())
    assert page.get_attribute("#next", "href") == f"{order[k + 1]}.html"
    assert page.get_attribute("#prev", "href") == f"{order[k - 1]}.html"
    page.click("#next")
    page.wait_for_url(re.compile(re.escape(f"/{order[k + 1]}.html") + "$"))
    _wait_loaded(page, "#figure-image")
    page.click("#prev")
    page.wait_for_url(re.compile(r"/3\.5\.html$"))
    first_of_4 = min((i for i in order if i.startswith("4.")), key=sort_key)
    assert page.get_attribute("#next-chapter", "href") == f"{first_of_4}.html"
    page.click("#next-chapter")
    page.wait_for_url(re.compile(re.escape(f"/{first_of_4}.html") + "$"))
    prev_chapter = page.get_attribute("#prev-chapter", "href")
    assert records[prev_chapter.removesuffix(".html")]["chapter"] == 3
    page.goto((out / "3.5.html").as_uri())
    assert page.get_attribute("#record", "href") == "3.5.json"
    page.click("#record")
    page.wait_for_url(re.compile(r"/3\.5\.json$"))
    assert json.loads(page.locator("pre").first.inner_text()) == records["3.5"]


def test_a_failed_figure_page(gallery, page):
    out, records = gallery
    page.goto((out / "C.1.html").as_uri())
    rows = page.locator("#checks tr.fail")
    text = page.text_content("body")  # all of it, folded parts too
    assert rows.count() == 1 and records["C.1"]["error"].split(":")[0] in text
    # no broken picture (the failed figure has none) and no absolute path of this machine
    assert page.locator('img[src="C.1.png"]').count() == 0
    _wait_loaded(page, "img")
    assert str(Path(udl.__file__).resolve().parents[1]) not in text
    assert "udl/registry.py" in text  # the traceback is there, with a relative path
