"""udl.sources: the code behind each figure, read from the syntax trees (nothing computed), against
Python's own ``inspect`` (file and first line of every block) and the figure modules' imports."""

import html
import importlib
import inspect
import re
from pathlib import Path

import pytest

from udl import sources
from udl.nn import shallow
from udl.nn.activations import relu
from udl.registry import FigureSpec, Result, UnknownFigure, get, load_all
from udl.sources import KINDS, MAX_LINES, SourceBlock, figure_sources, highlight, pygments_css, source_root

SPECS = load_all()


def _object(name: str):
    """The function or class a block's qualified name names (drawing and checks: ``<computation>.plot``)."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if isinstance(obj, FigureSpec):  # ``spec.plot`` / ``spec.checks``: the functions they attached
                obj = {"plot": obj.draw_fn, "checks": obj.checks_fn}[attr]
            else:
                obj = getattr(obj, attr)
        return obj.compute if isinstance(obj, FigureSpec) else obj
    raise LookupError(name)


def _names(fig_id):
    return {b.name: b for b in figure_sources(fig_id)}


def _file_lines(block):
    return (source_root() / block.path).read_text(encoding="utf-8").splitlines(keepends=True)


# --------------------------------------------------------------------------- what each figure lists
def test_3_5_lists_the_library_functions_its_computation_calls():
    blocks = _names("3.5")
    spec = get("3.5")
    assert blocks[f"udl.figures.ch03.{spec.compute.__name__}"].kind == "computation"
    # ch03 imports fit_shallow from udl.nn.shallow and count_regions_* from udl.analysis.regions; 3.5 calls them
    for name in ("udl.nn.shallow.fit_shallow", "udl.analysis.regions.count_regions_1d",
                 "udl.analysis.regions.count_regions_sampled_1d"):
        module_file = name.rsplit(".", 1)[0].replace(".", "/") + ".py"  # udl/nn/shallow.py
        assert blocks[name].kind == "library" and blocks[name].path in (module_file, "src/" + module_file)
    # a private helper of the figure module, and none of the framework (Result, Check, figure)
    assert blocks["udl.figures.ch03._smooth_truth"].kind == "figure helper"
    assert not [n for n in blocks if n.startswith(("udl.registry", "udl.runner", "udl.style"))]


def test_3_1_is_the_computation_relu_the_drawing_and_the_checks():
    blocks = figure_sources("3.1")
    spec = get("3.1")
    assert [(b.kind, b.name) for b in blocks] == [
        ("computation", "udl.figures.ch03.relu_curve"), ("library", "udl.nn.activations.relu"),
        ("drawing", "udl.figures.ch03.relu_curve.plot"), ("checks", "udl.figures.ch03.relu_curve.checks")]
    # the decorator that registers the figure is part of the computation's source
    assert blocks[0].code.startswith('@figure("3.1"')
    assert blocks[2].line == inspect.getsourcelines(spec.draw_fn)[1]
    assert blocks[3].line == inspect.getsourcelines(spec.checks_fn)[1]


def test_12_12_lists_the_recipe_and_the_gpt_it_trains():
    blocks = _names("12.12")
    # called by the computation directly, and through the figure helper _decoder
    for name in ("udl.models.decoding.generate", "udl.models.decoding.beam_search", "udl.models.gpt.causal_gradient",
                 "udl.train.transformers.pretrained_gpt", "udl.models.gpt.GPTConfig"):
        assert blocks[name].kind == "library", name
    assert blocks["udl.figures.ch12_gpt._decoder"].kind == "figure helper"
    assert blocks["udl.figures.ch12_gpt._config"].kind == "figure helper"  # a helper of the helper
    # the network pretrained_gpt builds, one level below what the figure calls (evaluate_cross_entropy, listed
    # before it, only names GPT in an isinstance check: naming is not building)
    gpt = blocks["udl.models.gpt.GPT"]
    assert gpt.kind == "library" and gpt.code.startswith("class GPT(")
    assert gpt.via == "udl.train.transformers.pretrained_gpt"
    assert blocks["udl.train.transformers.pretrained_gpt"].via == "udl.figures.ch12_gpt._decoder"
    assert blocks["udl.figures.ch12_gpt._config"].via == "udl.figures.ch12_gpt._decoder"
    assert blocks["udl.models.decoding.generate"].via == ""  # called by the computation itself
    # a helper the checks call is found through the checks
    assert blocks["udl.figures.ch12_gpt._if_trained"].via == "udl.figures.ch12_gpt.gpt_decoder.checks"
    assert not [n for n in blocks if n.rsplit(".", 1)[-1].startswith("_") and blocks[n].kind == "library"]


def test_attribute_chains_through_imported_modules_and_local_names():
    def uses():  # ``shallow.ShallowNetwork`` through the module; ``relu`` is shadowed by a local name
        relu = abs
        return shallow.ShallowNetwork, relu

    assert relu is not abs
    assert sources._callees(uses) == (shallow.ShallowNetwork,)


def test_the_order_is_computation_helpers_library_drawing_checks():
    order = {kind: i for i, kind in enumerate(KINDS)}
    for fig_id in ("3.5", "12.12", "10.18", "13.8"):
        kinds = [b.kind for b in figure_sources(fig_id)]
        assert kinds[0] == "computation" and kinds.count("computation") == 1
        assert kinds == sorted(kinds, key=order.get), fig_id


@pytest.mark.parametrize("fig_id", list(SPECS))
def test_every_figure_lists_its_code_with_relative_paths_and_true_lines(fig_id):
    spec = SPECS[fig_id]
    blocks = figure_sources(spec)
    assert blocks[0].kind == "computation" and blocks[0].name == f"{spec.module}.{spec.function}"
    assert [b.kind for b in blocks].count("drawing") == (spec.draw_fn is not None)
    assert len({b.name for b in blocks}) == len(blocks)  # each object once
    for block in blocks:
        assert not Path(block.path).is_absolute() and (source_root() / block.path).is_file()
        obj = inspect.unwrap(_object(block.name))  # a @contextmanager: the function written
        lines, first = inspect.getsourcelines(obj)  # Python's own reading of the same object
        assert block.line == first, block.name
        assert inspect.getsourcefile(obj) == str((source_root() / block.path).resolve())
        file_lines = _file_lines(block)
        assert re.match(r"\s*(@|def |class |async def )", file_lines[block.line - 1]), block.name
        shown = block.code.splitlines(keepends=True)[:MAX_LINES]
        assert shown == file_lines[block.line - 1:block.line - 1 + len(shown)], block.name
        assert block.kind in ("computation", "drawing", "checks") or block.name.startswith("udl.")


def test_long_classes_are_cut_saying_so():
    cut = [b for fig in ("8.5", "12.8", "17.vae") for b in figure_sources(fig) if b.omitted]
    assert cut, "expected at least one class longer than MAX_LINES among these figures"
    for block in cut:
        lines = block.code.splitlines()
        assert len(lines) == MAX_LINES + 1
        end = block.line + MAX_LINES + block.omitted - 1
        assert lines[-1] == f"# ... {block.omitted} more lines ({block.path}, lines {block.line + MAX_LINES}-{end})"
        # the last line left out is the last line of the class's body
        node = sources._definition(_object(block.name)).node
        assert node.end_lineno == end
        # highlighted with the file's line numbers; the note has none
        assert _text(block.html) == block.code
        assert _numbers(block.html) == list(range(block.line, block.line + MAX_LINES))


# --------------------------------------------------------------------------- highlighting
def _text(markup: str) -> str:
    """The text a reader copies: tags and line numbers gone, entities decoded."""
    assert markup.endswith("</pre></div>\n")
    markup = re.sub(r'<span class="linenos">[^<]*</span>', "", markup.removesuffix("</pre></div>\n"))
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def _numbers(markup: str) -> list[int]:
    return [int(n) for n in re.findall(r'<span class="linenos">\s*(\d+)</span>', markup)]


def test_highlight_is_pygments_spans_around_the_same_text():
    code = 'def f(x):\n    return x < 1 and "a&b"  # note\n'
    markup = highlight(code)
    assert markup.startswith('<div class="highlight"><pre>')
    assert '<span class="k">def</span>' in markup and '<span class="nf">f</span>' in markup
    assert '<span class="c1"># note</span>' in markup
    assert _text(markup) == code and "linenos" not in markup
    numbered = highlight(code, start=41)
    assert _numbers(numbered) == [41, 42]
    assert _text(numbered) == code


def test_block_html_is_its_code_numbered_from_its_line():
    for block in figure_sources("12.12"):
        assert _text(block.html) == block.code
        assert _numbers(block.html) == list(range(block.line, block.line + len(block.code.splitlines())))


def test_pygments_css_is_scoped_to_highlight():
    css = pygments_css()
    assert ".highlight .k {" in css and ".highlight .c1 {" in css and ".highlight span.linenos" in css
    selectors = [rule.split("{")[0] for rule in css.splitlines() if "{" in rule]
    assert selectors and all(s.startswith(".highlight") for s in selectors)
    assert ".highlight .k {" in pygments_css("monokai") and pygments_css("monokai") != css


# --------------------------------------------------------------------------- arguments
def test_bad_arguments():
    with pytest.raises(TypeError, match=r"^The 'fig_id_or_spec' parameter of figure_sources must be a str or a "
                                        r"FigureSpec\. Got 3\.5 instead\.$"):
        figure_sources(3.5)
    with pytest.raises(UnknownFigure, match="did you mean"):
        figure_sources("3.55")
    with pytest.raises(TypeError, match="^The 'code' parameter of highlight must be a str"):
        highlight(b"x = 1")
    with pytest.raises(ValueError, match="^The 'start' parameter of highlight must be a positive int"):
        highlight("x = 1", start=0)
    with pytest.raises(ValueError, match="^The 'style' parameter of pygments_css must be one of"):
        pygments_css("no-such-style")
    good = dict(name="udl.x.f", kind="library", path="src/udl/x.py", line=3, code="def f():\n", html="")
    assert SourceBlock(**good).location == "src/udl/x.py:3"
    with pytest.raises(ValueError, match="^The 'path' parameter of SourceBlock must be a non-empty relative path"):
        SourceBlock(**{**good, "path": str(Path("/tmp/x.py").resolve())})
    with pytest.raises(ValueError, match="^The 'kind' parameter of SourceBlock must be one of"):
        SourceBlock(**{**good, "kind": "helper"})
    with pytest.raises(TypeError, match="^The 'via' parameter of SourceBlock must be a str"):
        SourceBlock(**{**good, "via": None})


def test_annotations_and_decorator_arguments_are_not_calls():
    from udl.nn.shallow import ShallowNetwork

    def annotated(net: ShallowNetwork, width: int = 3) -> ShallowNetwork:
        size: ShallowNetwork = width
        return relu(size)

    assert sources._callees(annotated) == (relu,)
    assert sources._built(annotated) == ()  # relu is a function; ShallowNetwork is only an annotation
    # 3.1's @figure(...) names udl.registry.figure, which is left out; the body names relu and Result
    assert sources._callees(get("3.1").compute) == (relu, Result)


def _fake_computation(p, run):
    return Result(metrics={"y": float(relu(shallow.ShallowNetwork(1, 2, 1, generator=0).theta).sum())})


def test_a_spec_without_drawing_and_a_computation_without_source():
    spec = FigureSpec("3.fake", "t", "c", {"tiny": {}, "full": {}}, _fake_computation)
    blocks = figure_sources(spec)
    assert [(b.kind, b.name) for b in blocks] == [
        ("computation", f"{__name__}._fake_computation"), ("library", "udl.nn.activations.relu"),
        ("library", "udl.nn.shallow.ShallowNetwork")]
    assert blocks[0].line == inspect.getsourcelines(_fake_computation)[1]
    # a lambda has no definition of its own to show: no blocks, no error
    assert figure_sources(FigureSpec("3.fake", "t", "c", {"tiny": {}, "full": {}}, lambda p, run: Result())) == []
