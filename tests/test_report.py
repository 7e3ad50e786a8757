"""The plan report (``msfopt report``) and ``solve --plot``, checked as a reader would: the page's
numbers against ``msfopt solve --json`` for the same query, its arena layout against the code
generator's offsets, its structure parsed with the standard library's HTML parser (no external
reference, hostile names escaped), and the page rendered by headless Chromium with networking
disabled (DOM complete, no request leaves the file, screenshot not blank)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import onnx
import pytest

from conftest import require_tools
from onnx_helpers import G

SECTIONS = ("summary", "timeline", "layout", "blocks", "pareto", "graph")
HOSTILE = "<script>alert(1)</script>"


def cli(*args, timeout=300):
    env = dict(os.environ)
    env.pop("MSFOPT_DEBUG", None)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                         env.get("PYTHONPATH", "")])
    p = subprocess.run([sys.executable, "-m", "msfopt.cli", *map(str, args)],
                       capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def branched_model(path: Path, graph_name: str = HOSTILE) -> Path:
    """conv -> dw -> conv -> add(skip of the first conv) -> conv s2 -> maxpool: a small graph
    with a residual branch, its graph and node names hostile HTML."""
    g = G(seed=3)
    x0 = g.op("Relu", [g.conv("x", 3, 8, 3, pads=[1, 1, 1, 1], name='<img src=x onerror=1>')])
    a = g.op("Relu", [g.conv(x0, 8, 8, 3, pads=[1, 1, 1, 1], group=8, name='"><b>dw')])
    b = g.conv(a, 8, 8, 1, name="pw&amp;")
    y = g.op("Add", [x0, b], name="add</title>")
    z = g.op("Relu", [g.conv(y, 8, 12, 3, s=2, pads=[1, 1, 1, 1])])
    w = g.op("MaxPool", [z], kernel_shape=[2, 2], strides=[2, 2])
    m = g.model("x", w, [1, 3, 24, 24])
    m.graph.name = graph_name
    onnx.save(m, str(path))
    return path


class Page(HTMLParser):
    """Everything the tests read from a report: sections, data-key values, URL-bearing
    attributes, style text, script tags and the embedded JSON."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.sections, self.values, self.urls, self.styles, self.scripts = [], {}, [], [], []
        self.svgs, self.tags = 0, {}
        self._in_style = self._in_json = False
        self.json_text = ""
        self.title = ""
        self._in_title = False
        self.feed(text)
        self.data = json.loads(self.json_text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "svg":
            self.svgs += 1
        if "data-key" in a and "data-value" in a:
            self.values[a["data-key"]] = a["data-value"]
        for k, v in a.items():
            if k in ("src", "href", "xlink:href", "action", "srcset", "poster", "data") and v:
                if not v.startswith("#"):
                    self.urls.append(v)
            if k == "style" and v:
                self.styles.append(v)
            if k == "fill" and v and v.startswith("url(") and not v.startswith("url(#"):
                self.urls.append(v)
        if tag == "style":
            self._in_style = True
        if tag == "script":
            self.scripts.append(a)
            self._in_json = a.get("type") == "application/json"
        if tag == "title" and not self.title:
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False
        if tag == "script":
            self._in_json = False
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)
        if self._in_json:
            self.json_text += data
        if self._in_title and not self.title:
            self.title = data


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The branched model, its plan from 'msfopt solve --json' and its report."""
    d = tmp_path_factory.mktemp("report")
    model = branched_model(d / "net.onnx")
    code, out, err = cli("solve", model, "--ram", "40000", "--json", "-")
    assert code == 0, err
    plan = json.loads(out)
    (d / "plan.json").write_text(out)
    code, _out, err = cli("report", model, "--ram", "40000", "-o", d / "r.html")
    assert code == 0, err
    return {"dir": d, "model": model, "plan": plan, "html": (d / "r.html").read_text()}


def test_report_structure_numbers_and_escaping(work):
    html_text, plan = work["html"], work["plan"]
    page = Page(html_text)
    assert page.sections == list(SECTIONS)
    assert page.svgs >= 4                       # timeline, layout, pareto, graph
    # self-contained: no URL of any kind in attributes, styles or CSS
    assert page.urls == []
    css = " ".join(page.styles)
    for bad in ("http:", "https:", "//", "@import", "url("):
        assert bad not in css, bad
    assert "http:" not in html_text and "https:" not in html_text
    # one script tag, inert data
    assert [s.get("type") for s in page.scripts] == ["application/json"]
    # the header's numbers are those of 'msfopt solve --json' for the same query
    v = page.values
    for key in ("peak_ram_bytes", "arena_bytes", "macs", "mac_overhead", "est_cycles"):
        assert float(v[f"plan.{key}"]) == float(plan[key]), key
    assert int(v["vanilla.peak_ram_bytes"]) == plan["vanilla_peak_bytes"]
    assert int(v["vanilla.est_cycles"]) == plan["vanilla_cycles"]
    assert int(v["vanilla.macs"]) == plan["vanilla_macs"]
    assert int(v["plan.blocks"]) == len(plan["blocks"])
    d = page.data
    assert d["plan"]["setting"] == ", ".join(
        str(b["first_layer"]) if b["first_layer"] == b["last_layer"]
        else f"{b['first_layer']}-{b['last_layer']}" for b in plan["blocks"])
    assert d["budget_bytes"] == 40000
    # the blocks table and the timeline hold the plan's blocks, each stacked to its RAM
    assert [(b["first"], b["last"], b["mode"], b["tile"], b["ram_bytes"], b["macs"],
             b["est_cycles"]) for b in d["blocks"]] == [
        (b["first_layer"], b["last_layer"], b["mode"], b["tile"], b["ram_bytes"], b["macs"],
         b["est_cycles"]) for b in plan["blocks"]]
    for b in d["blocks"]:
        assert sum(s["bytes"] for s in b["segments"]) == b["ram_bytes"]
    peak = max(b["ram_bytes"] for b in plan["blocks"])
    assert d["blocks"][d["peak_block"]]["ram_bytes"] == peak
    # hostile names: escaped everywhere, never markup
    assert HOSTILE not in html_text
    assert "<img src=x" not in html_text and '"><b>dw' not in html_text
    assert "add</title>" not in html_text
    assert page.title == f"msfopt plan report: {HOSTILE}"      # parsed back: the literal text
    assert page.tags.get("img", 0) == 0 and page.tags.get("b", 0) > 0
    assert d["model"] == HOSTILE


def test_layout_is_the_code_generators(work):
    """Every arena rectangle sits at the offset the generated C uses, buffers alive together
    never overlap (except an in-place output over its dying input) and all fit the arena."""
    from msfopt.models import load_model
    from msfopt.plan import Plan
    from msfopt.mcu_runtime.codegen import generate
    d = Page(work["html"]).data
    net = load_model(work["model"])
    plan = Plan.from_dict(work["plan"])
    gen = generate(net, plan.blocks, work["dir"] / "gen", io=plan.io)
    lay = d["layout"]
    assert lay["arena_bytes"] == gen.arena_bytes == plan.arena_bytes
    tens = {r["tensor"]: r["offset"] for r in lay["rects"] if r["kind"] == "tensor"}
    assert tens == gen.tensor_offsets
    for k, s in enumerate(gen.schedules):       # scratch regions: where codegen's rings are
        mine = [r for r in lay["rects"] if r["kind"] == "ring" and r["first_block"] == k]
        assert len(mine) == (1 if s.rings else 0)
        if s.rings:
            assert mine[0]["bytes"] == s.scratch_bytes
    # an independent liveness: a tensor lives from its producer's block to its last reader's
    block_of = {l: k for k, s in enumerate(gen.schedules) for l in range(s.first, s.last + 1)}
    readers = {t: [l for l, L in enumerate(net.layers) if t in L.srcs] for t in tens}
    nb = len(gen.schedules)
    busiest = 0
    for k in range(nb):
        alive = []
        for r in lay["rects"]:
            if r["kind"] == "ring":
                on = r["first_block"] == k
            else:
                t = r["tensor"]
                born = 0 if t == 0 else block_of[t - 1]
                dies = nb - 1 if t in net.output_ids else max(
                    [block_of[l] for l in readers[t]] + [born])
                assert (r["first_block"], r["last_block"]) == (born, dies), r
                on = born <= k <= dies
            if on:
                alive.append(r)
                assert 0 <= r["offset"] and r["offset"] + r["bytes"] <= lay["arena_bytes"]
        for i, a in enumerate(alive):
            for b in alive[i + 1:]:
                overlap = a["offset"] < b["offset"] + b["bytes"] and b["offset"] < a["offset"] + a["bytes"]
                if overlap:   # only an in-place output over the input it replaces
                    pair = {a["tensor"], b["tensor"]}
                    s = gen.schedules[k]
                    assert s.inplace is not None and pair == {s.inplace, s.last + 1}, (k, a, b)
        spans = sorted((r["offset"], r["offset"] + r["bytes"]) for r in alive)
        covered, end = 0, 0
        for lo, hi in spans:
            if hi > end:
                covered += hi - max(lo, end)
                end = hi
        assert lay["per_block"][k]["bytes"] == covered
        assert covered == gen.schedules[k].ram_bytes     # the arena holds exactly the block's RAM
        busiest = max(busiest, covered)
    assert lay["busiest"]["bytes"] == busiest


def test_graph_and_pareto_sections(work):
    from msfopt.models import load_model
    from msfopt.solver import prepare
    from msfopt.backends import graph
    d = Page(work["html"]).data
    net = load_model(work["model"])
    g = d["graph"]
    assert [n["op"] for n in g["nodes"]] == [L.op for L in net.layers]
    assert sorted(map(tuple, g["edges"])) == sorted(
        (t - 1, l) for l, L in enumerate(net.layers) for t in set(L.srcs))
    for n in g["nodes"]:                        # layered: every edge goes to a deeper rank
        for s, t in g["edges"]:
            if t == n["layer"] and s >= 0:
                assert g["nodes"][s]["rank"] < n["rank"]
    pa = d["pareto"]
    assert pa["chosen"] == [work["plan"]["peak_ram_bytes"], work["plan"]["est_cycles"]]
    # each front point is the exact P2 optimum at its own peak (graph search referee)
    _n, dag, _r = prepare(net)
    for peak, lat in pa["points"]:
        r = graph.min_latency(dag, "cycles", peak)
        assert (r.total, r.peak) == (lat, peak)


def test_report_from_plan_and_bad_input(work, tmp_path):
    d = work["dir"]
    run = {"model": str(work["model"]), "target": "cortex-m4", "instructions": 1234567,
           "stack_hwm": 424, "total_ram": 41000, "arena_bytes": work["plan"]["arena_bytes"],
           "verdict": "bit-exact"}
    (tmp_path / "run.json").write_text(json.dumps(run))
    code, _o, err = cli("report", work["model"], "--plan", d / "plan.json", "--no-pareto",
                        "--run-json", tmp_path / "run.json", "-o", tmp_path / "p.html")
    assert code == 0, err
    page = Page((tmp_path / "p.html").read_text())
    assert page.sections == list(SECTIONS)
    ref = Page(work["html"]).values
    for key in ("plan.peak_ram_bytes", "plan.arena_bytes", "plan.macs", "plan.est_cycles"):
        assert page.values[key] == ref[key]
    assert page.data["measured"] == {k: v for k, v in run.items() if k != "model"} | {
        "model": run["model"]}
    text = (tmp_path / "p.html").read_text()
    assert "1,234,567" in text and "424" in text
    bad = dict(work["plan"])
    bad["blocks"] = [dict(b) for b in bad["blocks"]]
    bad["blocks"][0]["ram_bytes"] += 1
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    for args, words in (
            (("--plan", tmp_path / "bad.json", "-o", tmp_path / "x.html"), "RAM"),
            (("-o", tmp_path), "directory"),
            (("-o", tmp_path / "nope" / "x.html"), "does not exist")):
        code, out, err = cli("report", work["model"], "--no-pareto", *args)
        assert code == 2, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("msfopt: error:") and words in lines[0], err
    assert not (tmp_path / "x.html").exists()


def test_report_shows_measured_instructions_per_block(work, tmp_path):
    """A real cortex-m4 run (``msfopt run --target cortex-m4 --json``) of the plan: the report
    shows each block's measured instructions (QEMU counts between the runtime's block
    boundaries) exactly as the run measured them; together they are the run's instructions
    but for the input copy and call glue."""
    from msfopt.mcu_runtime.toolchain import missing_tools
    require_tools(missing_tools("cortex-m4"), "toolchain")
    d = work["dir"]
    code, _o, err = cli("codegen", work["model"], "--plan", d / "plan.json", "-o", tmp_path / "g")
    assert code == 0, err
    code, _o, err = cli("run", tmp_path / "g", "--target", "cortex-m4", "--json",
                        tmp_path / "run.json")
    assert code == 0, err
    run = json.loads((tmp_path / "run.json").read_text())
    per = run["block_instructions"]
    assert len(per) == len(work["plan"]["blocks"]) and min(per) > 0
    assert 0 <= run["instructions"] - sum(per) <= 0.05 * run["instructions"] + 5000
    code, _o, err = cli("report", work["model"], "--plan", tmp_path / "g" / "plan.json",
                        "--no-pareto", "--no-tflm", "--run-json", tmp_path / "run.json", "-o",
                        tmp_path / "m.html")
    assert code == 0, err
    page = Page((tmp_path / "m.html").read_text())
    assert [int(page.values[f"measured.block.{k}"]) for k in range(len(per))] == per
    assert page.data["measured"]["block_instructions"] == per


def _png_stats(path):
    import matplotlib.image as mpimg
    img = mpimg.imread(str(path))
    rgb = (np.asarray(img)[..., :3] * 255).round().astype(np.uint8)
    flat = rgb.reshape(-1, 3)
    colours = len(np.unique(flat.view([("r", "u1"), ("g", "u1"), ("b", "u1")])))
    dark = float((flat.astype(int).sum(axis=1) < 600).mean())      # not white-ish
    return img.shape, colours, dark


def test_solve_plot(work, tmp_path):
    png = tmp_path / "timeline.png"
    code, _o, err = cli("solve", work["model"], "--ram", "40000", "--no-check", "--plot", png)
    assert code == 0, err
    shape, colours, dark = _png_stats(png)
    assert shape[1] > 800 and colours > 20 and dark > 0.03
    code, _o, err = cli("solve", work["model"], "--no-check", "--plot", tmp_path)
    assert code == 2 and "directory" in err


# -- headless Chromium --------------------------------------------------------------------------

def _chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    require_tools([] if exe else ["chromium"], "headless browser")
    return exe


def _run_chromium(exe, html: Path, tmp: Path, *mode):
    """Chromium with networking disabled (proxy to a closed port, every host unresolvable),
    a net log of every request it makes."""
    netlog = tmp / f"netlog-{html.stem}-{mode[0].lstrip('-').split('=')[0]}.json"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
           f"--user-data-dir={tmp / 'profile'}", f"--log-net-log={netlog}", *mode,
           html.resolve().as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout, _page_requests(netlog)


def _page_requests(netlog: Path) -> list[str]:
    """URLs the page asked for: requests whose initiator is the page (Chromium's own background
    requests have initiator 'not an origin')."""
    ev = json.loads(netlog.read_text())["events"]
    out = []
    for e in ev:
        p = e.get("params")
        if isinstance(p, dict) and "url" in p and "initiator" in p \
                and p["initiator"] != "not an origin":
            out.append(p["url"])
    return out


def test_browser_render(work, tmp_path):
    exe = _chromium()
    html = work["dir"] / "r.html"
    # the request detector works: a page with one external image is caught
    ctl = tmp_path / "control.html"
    ctl.write_text('<!DOCTYPE html><html><body><img src="http://example.invalid/x.png">'
                   '</body></html>')
    _dom, reqs = _run_chromium(exe, ctl, tmp_path, "--dump-dom")
    assert any("example.invalid" in u for u in reqs), reqs
    dom, reqs = _run_chromium(exe, html, tmp_path, "--dump-dom")
    assert reqs == [], reqs
    page = Page(dom)
    assert page.sections == list(SECTIONS)
    assert page.svgs >= 4
    v, plan = page.values, work["plan"]
    for key in ("peak_ram_bytes", "arena_bytes", "macs", "est_cycles"):
        assert int(v[f"plan.{key}"]) == plan[key]
    assert f"{plan['peak_ram_bytes']:,} B" in dom
    assert page.title == f"msfopt plan report: {HOSTILE}"
    assert page.tags.get("img", 0) == 0
    shot = tmp_path / "shot.png"
    _out, reqs = _run_chromium(exe, html, tmp_path, f"--screenshot={shot}",
                               "--window-size=1280,2000")
    assert reqs == [], reqs
    shape, colours, dark = _png_stats(shot)
    assert shape[:2] == (2000, 1280)
    assert colours > 50 and dark > 0.05, (colours, dark)


def test_arena_drawing_of_concat_slices():
    """A fire module's expand convs write their concat slices: the report's arena drawing puts
    the concat output's rectangle from its first slice's producer on, so every block's drawn
    bytes equal the schedule's RAM (before: the concat blocks' drawings missed it)."""
    from msfopt.importers.onnx_import import load_onnx
    from msfopt.modes import schedule_of
    from msfopt.report import layout_data
    from msfopt.schedule import Liveness
    from msfopt.solver import solve
    g = G(3)
    s = g.op("Relu", [g.conv("x", 3, 4, 1)])
    e1 = g.op("Relu", [g.conv(s, 4, 8, 1)])
    e3 = g.op("Relu", [g.conv(s, 4, 8, 3, pads=[1, 1, 1, 1])])
    cat = g.op("Concat", [e1, e3], axis=1)
    y = g.conv(cat, 16, 4, 1)
    net = load_onnx(g.model("x", y, [1, 3, 12, 12]))
    plan = solve(net, objective="ram", check=False, modes=("hcache",))
    assert plan.concat_slices
    live = Liveness(net, plan.io)
    scheds = [schedule_of(net, live, b.first_layer, b.last_layer, b.mode, b.tile)
              for b in plan.blocks]
    d = layout_data(net, plan, scheds)
    assert [u["bytes"] for u in d["per_block"]] == [s.ram_bytes for s in scheds]
    (cat_rect,) = [r for r in d["rects"] if r["kind"] == "tensor" and r["tensor"] in live.born]
    block_of = {l: k for k, s in enumerate(scheds) for l in range(s.first, s.last + 1)}
    assert cat_rect["first_block"] == block_of[live.born[cat_rect["tensor"]] - 1]
