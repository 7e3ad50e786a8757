"""Inputs that must not hurt the user: hostile model/node names and paths never reach the
generated code as code, output directories are never clobbered, and no input reaches exit 1
("internal error"): every bad value is exit 2 with a one-line message and no traceback.

Most cases call the real CLI entry ``msfopt.cli.main`` with captured output; the injection and
working-directory tests run ``python -m msfopt.cli`` as a user would."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from msfopt.cli import main
from msfopt.errors import InputError
from msfopt.units import parse_positive_int, parse_ram

from onnx_helpers import G

MARKER = "PWNED_MARKER_7f3a"
#: a C payload that, pasted into a comment unescaped, closes it and defines a constructor that
#: prints MARKER before main() runs
PAYLOAD = ('*/ __attribute__((constructor)) static void msf_pwn(void) { extern int puts(const '
           'char *); puts("' + MARKER + '"); } /* ')
HOSTILE_NODE_NAMES = [
    "conv*/ $(touch PWNED_FILE) `touch PWNED_FILE` \"q\" \\ \n#define MSF_ARENA_BYTES 1u\n",
    PAYLOAD,
    "dw\n*/ int msf_pwn2 = 1; /*",
    "pw [/x] [red]$x$ ??/ ??= é \x1b[31m",
]
HOSTILE_GRAPH_NAME = PAYLOAD + " [/x] $x$ \\\n\"`id` $(id)\n#include <stdlib.h>"


# -- helpers -----------------------------------------------------------------------------------

def cli(capsys, *args):
    """Run the real CLI entry point; (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:      # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def cli_proc(*args, cwd=None, timeout=300):
    env = dict(os.environ)
    env.pop("MSFOPT_DEBUG", None)
    # the package is importable from any working directory (installed or on sys.path)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                         env.get("PYTHONPATH", "")])
    p = subprocess.run([sys.executable, "-m", "msfopt.cli", *map(str, args)], capture_output=True,
                       text=True, timeout=timeout, cwd=cwd, env=env)
    return p.returncode, p.stdout, p.stderr


def assert_error(code, err, expected: int, *words):
    """The documented exit code, one line 'msfopt: error: ...' on stderr, no traceback."""
    assert code != 1, err
    assert code == expected, (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("msfopt: error: "), err
    for w in words:
        assert w.lower() in lines[0].lower(), (w, err)


def residual_model(path: Path, graph_name="resnet", node_names=(None, None, None, None)):
    """conv+relu -> dw+relu -> 1x1 conv -> add(skip from the first conv): IR layers 0 conv,
    1 dw, 2 conv, 3 add reading tensors 3 and 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    g = G(seed=5)
    x0 = g.op("Relu", [g.conv("x", 3, 8, 3, pads=[1, 1, 1, 1], name=node_names[0])])
    a = g.op("Relu", [g.conv(x0, 8, 8, 3, pads=[1, 1, 1, 1], group=8, name=node_names[1])])
    b = g.conv(a, 8, 8, 1, name=node_names[2])
    y = g.op("Add", [x0, b], name=node_names[3])
    m = g.model("x", y, [1, 3, 12, 12])
    m.graph.name = graph_name
    onnx.save(m, str(path))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return residual_model(tmp_path_factory.mktemp("model") / "res.onnx")


@pytest.fixture(scope="module")
def plan_dict(model, tmp_path_factory) -> dict:
    """A valid plan of the residual model, from 'msfopt solve --json'."""
    f = tmp_path_factory.mktemp("plan") / "plan.json"
    code, _out, err = cli_proc("solve", model, "--no-check", "--json", f)
    assert code == 0, err
    d = json.loads(f.read_text())
    assert [(b["first_layer"], b["last_layer"]) for b in d["blocks"]][0][0] == 0
    return d


@pytest.fixture(scope="module")
def gen_dir(model, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("gen") / "out"
    code, _out, err = cli_proc("codegen", model, "--no-check", "-o", d)
    assert code == 0, err
    return d


def copy_gen(gen_dir: Path, tmp_path: Path) -> Path:
    d = tmp_path / "gen"
    shutil.copytree(gen_dir, d)
    return d


def snapshot(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


# -- numbers -----------------------------------------------------------------------------------

def test_parse_ram_is_exact_integer_arithmetic():
    # a float would round these: 2**63 - 1 -> 2**63, 2**53 + 1 -> 2**53, 2**52 + 1.5 -> 2**52 + 2
    assert parse_ram("9223372036854775807") == 2 ** 63 - 1
    assert parse_ram(str(2 ** 53 + 1)) == 2 ** 53 + 1
    assert parse_ram(f"{2 ** 52 + 1}.5k") == (2 ** 52 + 1) * 1024 + 512
    assert parse_ram("0.5k") == 512 and parse_ram("1.5kB") == 1500 and parse_ram("2.5M") == 2621440
    assert parse_ram(2 ** 63 - 1) == 2 ** 63 - 1
    for bad in ("9223372036854775808", "99999999999999999999", f"{2 ** 53 + 1}k", "1e3",
                "0.001k", "1.0000001", "1" * 5000, "inf", "nan", 2 ** 63, True):
        with pytest.raises(InputError):
            parse_ram(bad)


def test_parse_positive_int_bounds():
    assert parse_positive_int("9223372036854775807", "budget") == 2 ** 63 - 1
    assert parse_positive_int("1_000", "budget") == 1000
    for bad in ("9223372036854775808", "99999999999999999999", "-1", "0", "1.5", "nan", ""):
        with pytest.raises(InputError):
            parse_positive_int(bad, "budget")


@pytest.mark.parametrize("args,words", [
    (("--ram", "99999999999999999999"), ("too large",)),
    (("--ram", "9223372036854775808"), ("too large",)),
    (("--ram", "1" * 5000), ("too large",)),
    (("--objective", "ram", "--latency-budget", "99999999999999999999"), ("too large",)),
    (("--objective", "ram", "--latency-budget", "9223372036854775808"), ("too large",)),
    (("--time-limit", "nan"), ("time-limit",)),
    (("--time-limit", "inf"), ("time-limit",)),
    (("--time-limit", "-1"), ("time-limit",)),
    (("--time-limit", "0"), ("time-limit",)),
    (("--threads", "0"), ("threads",)),
    (("--threads", "100000000"), ("threads",)),
    (("--tiles", "99999999999999999999"), ("tiles",)),
    (("--patches", "1,-2"), ("patches",)),
    (("--max-depth", "0"), ("max-depth",)),
    (("--mcu", "nonsense"), ("nonsense",)),
])
def test_solve_bad_numbers_exit_2(capsys, model, args, words):
    code, _out, err = cli(capsys, "solve", model, "--no-check", *args)
    assert_error(code, err, 2, *words)


@pytest.mark.parametrize("backend", ["cpsat", "highs"])
def test_int64_extremes_are_accepted(capsys, model, backend):
    """The largest accepted budgets solve (no overflow inside the solvers)."""
    code, out, err = cli(capsys, "solve", model, "--backend", backend, "--no-check", "--ram",
                         "9223372036854775807", "--json", "-")
    assert code == 0, err
    assert json.loads(out)["constraints"]["ram_bytes"] == 2 ** 63 - 1
    code, out, err = cli(capsys, "solve", model, "--backend", backend, "--no-check",
                         "--objective", "ram", "--latency-budget", "9223372036854775807",
                         "--json", "-")
    assert code == 0, err
    code, out, err = cli(capsys, "solve", model, "--backend", backend, "--no-check",
                         "--objective", "ram", "--max-overhead", "1e300", "--json", "-")
    assert code == 0, err


def test_mcu_budget_beyond_ram_warns_one_line(capsys, model):
    code, out, err = cli(capsys, "solve", model, "--mcu", "sifive_e", "--ram", "1M", "--no-check")
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("msfopt: warning: "), err
    assert "sifive_e" in lines[0] and "1,048,576" in lines[0] and "exceeds" in lines[0]
    code, out, err = cli(capsys, "solve", model, "--mcu", "sifive_e", "--no-check")
    assert code == 0 and err == "", err


# -- run / build / export options --------------------------------------------------------------

@pytest.mark.parametrize("args,words", [
    (("run", "{gen}", "--target", "nonsense"), ("nonsense",)),
    (("build", "{gen}", "--target", "nonsense"), ("nonsense",)),
    (("run", "{gen}", "--seed", "-1"), ("seed",)),
    (("run", "{gen}", "--seed", "99999999999999999999"), ("seed",)),
    (("run", "{gen}", "--timeout", "0"), ("time-out",)),
    (("run", "{gen}", "--timeout", "nan"), ("time-out",)),
    (("run", "{gen}", "--timeout", "-3"), ("time-out",)),
    (("codegen", "{model}", "--seed", "-1", "-o", "{tmp}/o"), ("seed",)),
    (("export-onnx", "{model}", "--seed", "-1", "-o", "{tmp}/o.onnx"), ("seed",)),
])
def test_run_build_bad_options_exit_2(capsys, gen_dir, model, tmp_path, args, words):
    args = [a.format(gen=gen_dir, model=model, tmp=tmp_path) for a in args]
    code, _out, err = cli(capsys, *args)
    assert_error(code, err, 2, *words)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("nbytes,words", [(12 * 12 * 3 * 4 - 3, ("multiple",)),
                                          (12 * 12 * 3 * 4 + 4, ("elements",)),
                                          (0, ("elements",))])
def test_run_input_of_wrong_size(capsys, gen_dir, tmp_path, nbytes, words):
    f = tmp_path / "in.bin"
    f.write_bytes(b"\x01" * nbytes)
    code, _out, err = cli(capsys, "run", gen_dir, "--input", f)
    assert_error(code, err, 2, *words)


def test_run_input_directory_and_missing(capsys, gen_dir, tmp_path):
    code, _out, err = cli(capsys, "run", gen_dir, "--input", tmp_path)
    assert_error(code, err, 2)
    code, _out, err = cli(capsys, "run", gen_dir, "--input", tmp_path / "nope.bin")
    assert_error(code, err, 2, "not found")


@pytest.mark.parametrize("edit", ["drop-model", "drop-seed", "drop-io", "drop-rq", "drop-dtype",
                                  "not-json", "list", "bad-io", "bad-seed", "empty", "nested"])
@pytest.mark.parametrize("cmd", ["run", "build"])
def test_broken_marker_exit_2(capsys, gen_dir, tmp_path, edit, cmd):
    d = copy_gen(gen_dir, tmp_path)
    meta_p = d / "msfopt_gen.json"
    meta = json.loads(meta_p.read_text())
    if edit.startswith("drop-"):
        del meta[edit[5:]]
        text = json.dumps(meta)
    else:
        text = {"not-json": "{model: nope", "list": "[1, 2]", "empty": "",
                "bad-io": json.dumps({**meta, "io": "sideways"}),
                "bad-seed": json.dumps({**meta, "seed": "zero"}),
                "nested": "[" * 100000 + "]" * 100000}[edit]
    meta_p.write_text(text)
    code, _out, err = cli(capsys, cmd, d)
    assert_error(code, err, 2, "msfopt_gen.json")


def test_run_not_a_generated_dir(capsys, tmp_path):
    code, _out, err = cli(capsys, "run", tmp_path)
    assert_error(code, err, 2, "msfopt_gen.json")


# -- plan files --------------------------------------------------------------------------------

def _blocks(*spec):
    return [{"first_layer": a, "last_layer": b, "mode": m, "tile": t, "ram_bytes": 0, "macs": 0,
             "est_cycles": 0} for a, b, m, t in spec]


PLAN_CASES = {
    # layers 0 conv, 1 dw, 2 conv, 3 add(tensor 3, tensor 1)
    "overlap": (_blocks((0, 0, "unfused", 0), (0, 1, "hcache", 1), (2, 2, "unfused", 0),
                        (3, 3, "unfused", 0)), "overlaps"),
    "gap": (_blocks((0, 0, "unfused", 0), (2, 2, "unfused", 0), (3, 3, "unfused", 0)), "gap"),
    "short": (_blocks((0, 0, "unfused", 0), (1, 1, "unfused", 0)), "in no block"),
    "out-of-range": (_blocks((0, 0, "unfused", 0), (1, 1, "unfused", 0), (2, 2, "unfused", 0),
                             (3, 4, "unfused", 0)), "out of range"),
    "negative": (_blocks((-1, 0, "unfused", 0), (1, 3, "unfused", 0)), "out of range"),
    "reversed": (_blocks((0, 0, "unfused", 0), (2, 1, "unfused", 0), (3, 3, "unfused", 0)),
                 "out of range"),
    "unknown-mode": (_blocks((0, 0, "unfused", 0), (1, 2, "turbo", 1), (3, 3, "unfused", 0)),
                     "unknown mode"),
    "tile-zero": (_blocks((0, 0, "unfused", 0), (1, 2, "hcache", 0), (3, 3, "unfused", 0)), "tile"),
    "tile-huge": (_blocks((0, 0, "unfused", 0), (1, 2, "recompute", 10 ** 12),
                          (3, 3, "unfused", 0)), "tile"),
    "tile-unfused": (_blocks((0, 0, "unfused", 5), (1, 1, "unfused", 0), (2, 2, "unfused", 0),
                             (3, 3, "unfused", 0)), "tile"),
    "tile-negative": (_blocks((0, 0, "unfused", -1), (1, 1, "unfused", 0), (2, 2, "unfused", 0),
                              (3, 3, "unfused", 0)), "negative"),
    "unfused-multi": (_blocks((0, 1, "unfused", 0), (2, 2, "unfused", 0), (3, 3, "unfused", 0)),
                      "one layer"),
    "across-add": (_blocks((0, 0, "unfused", 0), (1, 3, "hcache", 1)), "cannot run fused"),
    # tensor 1 (layer 0's output) is read by the add outside the block
    "read-outside": (_blocks((0, 1, "hcache", 1), (2, 2, "unfused", 0), (3, 3, "unfused", 0)),
                     "cannot run fused"),
    "inplace-on-conv": (_blocks((0, 0, "inplace", 1), (1, 1, "unfused", 0), (2, 2, "unfused", 0),
                                (3, 3, "unfused", 0)), "cannot run fused"),
    "empty": ([], "blocks is empty"),
}


@pytest.mark.parametrize("case", sorted(PLAN_CASES))
def test_structurally_invalid_plan_exit_2(capsys, model, plan_dict, tmp_path, case):
    blocks, words = PLAN_CASES[case]
    f = tmp_path / "plan.json"
    f.write_text(json.dumps({**plan_dict, "blocks": blocks, "arena_bytes": None}))
    out = tmp_path / "out"
    code, _out, err = cli(capsys, "codegen", model, "--plan", f, "-o", out)
    assert_error(code, err, 2, words)
    assert not out.exists()
    assert not list(tmp_path.glob(".msfopt-tmp-*"))


def test_plan_validation_in_the_library_api(model, plan_dict):
    from msfopt.models import load_model
    from msfopt.plan import Plan, validate_blocks
    net = load_model(str(model))
    Plan.from_dict(plan_dict).validate(net)          # the solver's plan is valid
    for case, (blocks, words) in PLAN_CASES.items():
        with pytest.raises(InputError, match="(?i)" + re.escape(words)):
            Plan.from_dict({**plan_dict, "blocks": blocks}).validate(net)
    with pytest.raises(InputError, match="cannot run fused"):
        validate_blocks(net, [(0, 0, "unfused", 0), (1, 3, "hcache", 1)])


@pytest.mark.parametrize("edit,words", [
    (lambda d: d["blocks"][0].update(first_layer="0"), "first_layer must be an integer"),
    (lambda d: d["blocks"][0].update(tile=1.5), "tile must be an integer"),
    (lambda d: d["blocks"][0].update(tile=True), "tile must be an integer"),
    (lambda d: d["blocks"][0].update(mode=3), "mode must be a string"),
    (lambda d: d["blocks"][0].pop("mode"), "lacks mode"),
    (lambda d: d["blocks"][0].update(colour="red"), "unknown key"),
    (lambda d: d.update(blocks={"a": 1}), "blocks must be a list"),
    (lambda d: d.update(blocks=[1, 2]), "must be an object"),
    (lambda d: d.update(io=7), "io must be a string"),
    (lambda d: d.update(io="sideways"), "io"),
    (lambda d: d.update(arena_bytes="lots"), "arena_bytes"),
    (lambda d: d.update(arena_bytes=1), "arena_bytes"),
    (lambda d: d.pop("model"), "missing key"),
    (lambda d: d.update(model="another-net"), "is for another-net"),
    (lambda d: d.update(cost_model="msfcnn"), "cost-model runtime"),
])
def test_plan_with_wrong_types_exit_2(capsys, model, plan_dict, tmp_path, edit, words):
    d = json.loads(json.dumps(plan_dict))
    edit(d)
    f = tmp_path / "plan.json"
    f.write_text(json.dumps(d))
    code, _out, err = cli(capsys, "codegen", model, "--plan", f, "-o", tmp_path / "out")
    assert_error(code, err, 2, words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", ["{not json", "[1, 2, 3]", "", "\xff\xfe", "[" * 100000,
                                     '{"blocks": ' + "9" * 5000 + "}", None])
def test_plan_file_unreadable_exit_2(capsys, model, tmp_path, content):
    f = tmp_path / "plan.json"
    if content is None:
        f.mkdir()                       # a directory
    elif content == "\xff\xfe":
        f.write_bytes(b"\xff\xfe\x00garbage")
    else:
        f.write_text(content)
    code, _out, err = cli(capsys, "codegen", model, "--plan", f, "-o", tmp_path / "out")
    assert_error(code, err, 2, "plan")
    code, _out, err = cli(capsys, "codegen", model, "--plan", tmp_path / "nope.json", "-o",
                          tmp_path / "out")
    assert_error(code, err, 2, "not found")
    assert not (tmp_path / "out").exists()


def test_hand_written_plan_is_accepted_and_runs(capsys, model, plan_dict, tmp_path):
    """Validation is not a blanket refusal: an all-unfused plan written by hand (no costs, no
    arena) generates code that matches onnxruntime on the original file."""
    d = {**plan_dict, "arena_bytes": None,
         "blocks": _blocks(*[(k, k, "unfused", 0) for k in range(4)])}
    f = tmp_path / "plan.json"
    f.write_text(json.dumps(d))
    out = tmp_path / "out"
    code, _o, err = cli(capsys, "codegen", model, "--plan", f, "-o", out)
    assert code == 0, err
    code, _o, err = cli(capsys, "run", out)
    assert code == 0, err


def test_edited_plan_json_in_generated_dir_exit_2(capsys, gen_dir, tmp_path):
    d = copy_gen(gen_dir, tmp_path)
    p = json.loads((d / "plan.json").read_text())
    p["blocks"] = _blocks((0, 1, "hcache", 1), (2, 2, "unfused", 0), (3, 3, "unfused", 0))
    (d / "plan.json").write_text(json.dumps(p))
    code, _out, err = cli(capsys, "run", d)
    assert_error(code, err, 2, "cannot run fused")
    (d / "plan.json").write_text("{")
    code, _out, err = cli(capsys, "build", d)
    assert_error(code, err, 2, "plan")


# -- output directories ------------------------------------------------------------------------

USER_FILES = {"plan.json": b'{"mine": true}\n', "CMakeLists.txt": b"project(mine)\n",
              "msf_model.c": b"/* my own code */\n", "notes.txt": b"keep me\n"}


def _user_dir(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for k, v in USER_FILES.items():
        (d / k).write_bytes(v)
    return d


def test_empty_output_path_is_refused(capsys, model, tmp_path, monkeypatch):
    cwd = _user_dir(tmp_path / "cwd")
    monkeypatch.chdir(cwd)
    before = snapshot(cwd)
    for flags in ((), ("--force",)):
        code, _out, err = cli(capsys, "codegen", model, "--no-check", "-o", "", *flags)
        assert_error(code, err, 2, "empty output")
        assert snapshot(cwd) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd"]
    code, _out, err = cli(capsys, "codegen", model, "--no-check", "-o", "   ")
    assert_error(code, err, 2, "empty output")
    assert snapshot(cwd) == before


def test_non_empty_user_dir_is_refused_without_force(capsys, model, tmp_path):
    d = _user_dir(tmp_path / "mine")
    before = snapshot(d)
    code, _out, err = cli(capsys, "codegen", model, "--no-check", "-o", d)
    assert_error(code, err, 2, "--force")
    assert snapshot(d) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]       # no staging left over
    # --plan refuses the directory before it reads the plan
    code, _out, err = cli(capsys, "codegen", model, "--plan", tmp_path / "nope.json", "-o", d)
    assert_error(code, err, 2, "--force")
    assert snapshot(d) == before
    # a file where the directory should be
    f = tmp_path / "file"
    f.write_bytes(b"x")
    code, _out, err = cli(capsys, "codegen", model, "--no-check", "-o", f)
    assert_error(code, err, 2, "not a directory")
    assert f.read_bytes() == b"x"


def test_force_replaces_only_generated_files(capsys, model, tmp_path):
    d = _user_dir(tmp_path / "mine")
    code, _out, err = cli(capsys, "codegen", model, "--no-check", "-o", d, "--force")
    assert code == 0, err
    assert (d / "notes.txt").read_bytes() == USER_FILES["notes.txt"]
    assert (d / "msf_model.c").read_bytes() != USER_FILES["msf_model.c"]
    assert json.loads((d / "plan.json").read_text())["model"] == "resnet"
    assert (d / "msfopt_gen.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    code, _out, err = cli(capsys, "run", d)
    assert code == 0, err


def test_generated_dir_is_regenerated_in_place(capsys, model, tmp_path):
    d = tmp_path / "out"
    code, _out, err = cli(capsys, "codegen", model, "--no-check", "-o", d)
    assert code == 0, err
    (d / "mine.txt").write_bytes(b"mine")
    code, _out, err = cli(capsys, "codegen", model, "--no-check", "-o", d, "--objective", "ram")
    assert code == 0, err
    assert (d / "mine.txt").read_bytes() == b"mine"
    assert json.loads((d / "plan.json").read_text())["objective"] == "ram"
    # a directory whose marker is broken is no longer recognised as msfopt's
    (d / "msfopt_gen.json").write_text("{")
    before = snapshot(d)
    code, _out, err = cli(capsys, "codegen", model, "--no-check", "-o", d)
    assert_error(code, err, 2, "--force")
    assert snapshot(d) == before


def test_generated_dir_runs_from_any_working_directory(model, tmp_path):
    """Codegen with a relative model path from one directory, run from another."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(model, work / "net.onnx")
    code, _out, err = cli_proc("codegen", "net.onnx", "--no-check", "-o", "gen", cwd=work)
    assert code == 0, err
    meta = json.loads((work / "gen" / "msfopt_gen.json").read_text())
    assert meta["model"] == str((work / "net.onnx").resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, out, err = cli_proc("run", work / "gen", cwd=elsewhere)
    assert code == 0, err
    assert "matches" in out


# -- hostile names -----------------------------------------------------------------------------

def _control_payload_runs(tmp_path: Path) -> bool:
    """The payload is live: pasted into a comment the way msfopt used to, it compiles and the
    constructor prints the marker (so the test below can fail)."""
    c = tmp_path / "control.c"
    c.write_text(f"/* Generated by msfopt: {PAYLOAD}, 3 blocks. */\n"
                 "int main(void) { return 0; }\n")
    exe = tmp_path / "control"
    subprocess.run(["gcc", "-std=gnu99", "-w", str(c), "-o", str(exe)], check=True,
                   capture_output=True)
    return MARKER in subprocess.run([str(exe)], capture_output=True, text=True).stdout


def test_hostile_names_and_paths_inject_nothing(tmp_path):
    if shutil.which("gcc") is None:
        from conftest import require_tools
        require_tools(["gcc"], "host C compiler")
    assert _control_payload_runs(tmp_path)
    mdir = tmp_path / 'm*/ $(touch PWNED_FILE) `id` "q" \\ x\nnl' / "y*/"
    mdir.mkdir(parents=True)
    model = residual_model(mdir / 'net */ $(id) "x".onnx', graph_name=HOSTILE_GRAPH_NAME,
                           node_names=HOSTILE_NODE_NAMES)
    out = tmp_path / "out $(touch PWNED_FILE) `id`"
    work = tmp_path / "work"
    work.mkdir()
    code, stdout, err = cli_proc("codegen", model, "--no-check", "-o", out, cwd=work)
    assert code == 0, err
    assert "[/x]" in stdout                 # the name is printed literally, not as markup
    texts = {p.name: p.read_text() for p in out.iterdir() if p.is_file()}
    # the build files hold no model text at all: identical to a benign model's
    benign = tmp_path / "benign"
    code, _o, err = cli_proc("codegen", residual_model(tmp_path / "b" / "b.onnx"), "--no-check",
                             "-o", benign)
    assert code == 0, err
    for name in ("CMakeLists.txt", "msfopt.mk", "msf_config.h"):
        assert texts[name] == (benign / name).read_text(), name
    for name in ("msf_model.c", "msf_model.h"):
        t = texts[name]
        # names may appear escaped inside comments, never as code: strip the comments as the
        # C preprocessor does (a comment ends at the first */) and look at what is left
        code_only = re.sub(r"/\*.*?\*/", " ", t, flags=re.S)
        for bad in (MARKER, "msf_pwn", "puts", "constructor", "#define MSF_ARENA_BYTES 1u",
                    "stdlib", "$(", "`"):
            assert bad not in code_only, (name, bad)
        assert "$(id)" not in t and "`id`" not in t, name
    # every comment msfopt writes is one line and closed where msfopt closes it
    for name in ("msf_model.c", "msf_model.h"):
        for line in texts[name].splitlines():
            assert line.count("/*") <= 1 and line.count("*/") <= 1, line
    meta = json.loads(texts["msfopt_gen.json"])
    assert meta["model"] == str(model.resolve())
    # builds -Werror clean (msfopt build: -std=c99 -pedantic -Wall -Wextra -Werror) ...
    code, stdout, err = cli_proc("build", out, "--target", "host", cwd=work)
    assert code == 0, err
    exe = out / "msf_host"
    x = np.random.default_rng(0).standard_normal((12, 12, 3)).astype(np.float32)
    (work / "in.bin").write_bytes(x.tobytes())
    p = subprocess.run([str(exe), str(work / "in.bin"), str(work / "out.bin")],
                       capture_output=True, text=True, timeout=60)
    # ... and no constructor ran: the marker never appears
    assert p.returncode == 0, p.stderr
    assert MARKER not in p.stdout + p.stderr
    # the generated model still computes the network (onnxruntime on the original file)
    import onnxruntime as ort
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {"x": x.transpose(2, 0, 1)[None]})[0][0].transpose(1, 2, 0)
    y = np.frombuffer((work / "out.bin").read_bytes(), dtype=np.float32).reshape(ref.shape)
    assert np.allclose(y, ref, rtol=1e-4, atol=1e-5)
    code, stdout, err = cli_proc("run", out, cwd=work)      # (prints the name, literally)
    assert code == 0, err
    # nothing was executed by a shell along the way
    assert not list(tmp_path.rglob("PWNED_FILE"))


def test_hostile_names_in_tables_and_plots(tmp_path):
    model = residual_model(tmp_path / "n.onnx", graph_name="net [/x] [red]red $x$ \x1b[31m\n2",
                           node_names=HOSTILE_NODE_NAMES)
    for args in (("inspect", model), ("solve", model, "--no-check"),
                 ("compare", model, "--backends", "cpsat"),
                 ("pareto", model, "--no-check", "--plot", tmp_path / "f.png")):
        code, out, err = cli_proc(*args)
        assert code == 0, (args, err)
        assert "[/x]" in out and "\x1b" not in out, args
    assert (tmp_path / "f.png").stat().st_size > 0
    # an error quoting a hostile name is still one line
    f = tmp_path / "plan.json"
    code, _out, err = cli_proc("solve", model, "--no-check", "--json", f)
    assert code == 0, err
    f.write_text(json.dumps({**json.loads(f.read_text()), "model": "other"}))
    code, _out, err = cli_proc("codegen", model, "--plan", f, "-o", tmp_path / "o")
    assert_error(code, err, 2, "is for other, not net [/x]")
    assert "\x1b" not in err
