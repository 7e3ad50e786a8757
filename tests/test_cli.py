"""CLI behaviour: output, JSON schema, exit codes, one-line errors without tracebacks."""
import json
import subprocess
import sys

import pytest

from msfopt.errors import InputError
from msfopt.units import parse_ram, parse_overhead


def run(*args, input=None):
    p = subprocess.run([sys.executable, "-m", "msfopt.cli", *args], capture_output=True, text=True,
                       input=input, timeout=120)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.parametrize("text,value", [("64k", 65536), ("64K", 65536), ("64KiB", 65536),
                                        ("64kB", 64000), ("65536", 65536), ("1M", 1048576),
                                        ("1MiB", 1048576), ("2MB", 2000000), ("0.5k", 512)])
def test_parse_ram(text, value):
    assert parse_ram(text) == value


@pytest.mark.parametrize("text", ["0", "-5", "abc", "64q", "", "1.5", "0k", "nan"])
def test_parse_ram_rejects(text):
    with pytest.raises(InputError):
        parse_ram(text)


def test_parse_overhead():
    assert parse_overhead("inf") == float("inf")
    assert parse_overhead("1.3") == 1.3
    for bad in ("0.9", "x", "nan"):
        with pytest.raises(InputError):
            parse_overhead(bad)


def test_solve_json_schema(tmp_path):
    out = tmp_path / "plan.json"
    code, stdout, err = run("solve", "mbv2-w0.35", "--objective", "macs", "--ram", "64kB",
                            "--cost-model", "msfcnn", "--json", str(out))
    assert code == 0, err
    assert "63,741" in stdout and "agree" in stdout
    d = json.loads(out.read_text())
    for key in ("status", "objective", "cost_model", "peak_ram_bytes", "macs", "vanilla_macs",
                "mac_overhead", "est_cycles", "blocks", "backend", "solve_seconds", "cross_check",
                "io"):
        assert key in d
    assert d["peak_ram_bytes"] == 63741 and d["macs"] == 23249938
    assert d["io"] == "external" and d["cost_model"] == "msfcnn"
    assert d["cross_check"]["backend"] == "graph" and d["cross_check"]["agree"] is True
    b = d["blocks"]
    assert b[0]["first_layer"] == 0 and b[-1]["last_layer"] == 52
    assert all(b[k]["last_layer"] + 1 == b[k + 1]["first_layer"] for k in range(len(b) - 1))
    assert sum(x["macs"] for x in b) == d["macs"]
    assert max(x["ram_bytes"] for x in b) == d["peak_ram_bytes"]


def test_solve_json_stdout_runtime_model():
    code, stdout, err = run("solve", "mcunetv2-vww5", "--ram", "64k", "--json", "-")
    assert code == 0, err
    d = json.loads(stdout)
    assert d["cost_model"] == "runtime" and d["io"] == "arena"
    assert d["peak_ram_bytes"] <= 65536
    assert d["arena_bytes"] == -(-d["peak_ram_bytes"] // 4) * 4   # the aligned arena object
    assert d["est_cycles"] == sum(b["est_cycles"] for b in d["blocks"])


def test_ram_objective_cbc():
    code, stdout, err = run("solve", "vww", "--objective", "ram", "--max-overhead", "inf",
                            "--cost-model", "msfcnn", "--backend", "cbc", "--json", "-")
    assert code == 0, err
    d = json.loads(stdout)
    assert (d["peak_ram_bytes"], d["macs"]) == (12000, 22655616)


def test_graph_backend_cross_checks_with_ilp():
    code, stdout, err = run("solve", "vww", "--objective", "macs", "--ram", "32kB",
                            "--cost-model", "msfcnn", "--backend", "graph", "--json", "-")
    assert code == 0, err
    d = json.loads(stdout)
    assert d["cross_check"]["backend"] == "cpsat" and d["cross_check"]["agree"]
    assert (d["peak_ram_bytes"], d["macs"]) == (26128, 12888576)


def test_infeasible_exit_3_names_minimum():
    code, stdout, err = run("solve", "mcunet-320k", "--objective", "macs", "--ram", "32kB",
                            "--cost-model", "msfcnn")
    assert code == 3
    assert "42,643" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [
    ("solve", "no-such-model"),
    ("solve", "mbv2", "--ram", "0"),
    ("solve", "mbv2", "--ram", "-4k"),
    ("solve", "mbv2", "--ram", "lots"),
    ("solve", "mbv2", "--objective", "ram", "--max-overhead", "0.5"),
    ("solve", "mbv2", "--objective", "speed"),
    ("solve", "mbv2", "--max-overhead", "1.2"),
    ("solve", "mbv2", "--tiles", "0"),
    ("frobnicate",),
    ("solve",),
])
def test_bad_input_exit_2_one_line(args):
    code, stdout, err = run(*args)
    assert code == 2, (code, err)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("content", [b"\x00\x01garbage\xff" * 10, b""])
def test_garbage_model_file(tmp_path, content):
    f = tmp_path / "bad.onnx"
    f.write_bytes(content)
    code, stdout, err = run("solve", str(f))
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_model_file(tmp_path):
    code, stdout, err = run("solve", str(tmp_path / "nope.onnx"))
    assert code == 2 and "not found" in err


def test_models_and_inspect():
    code, stdout, err = run("models")
    assert code == 0
    for name in ("mbv2-w0.35", "mcunetv2-vww5", "mcunet-320k", "81,625,520"):
        assert name in stdout
    code, stdout, err = run("inspect", "mcunet-320k")
    assert code == 0
    assert "309,760" in stdout.replace("\n", " ") or "309,760" in stdout
    assert "54" in stdout


def test_library_api():
    import msfopt
    plan = msfopt.solve("mbv2-w0.35", objective="macs", ram="64kB", cost_model="msfcnn")
    assert (plan.peak_ram_bytes, plan.macs) == (63741, 23249938)
    assert plan.cross_check["agree"]
    with pytest.raises(msfopt.InfeasibleError) as e:
        msfopt.solve("mcunet-320k", objective="macs", ram=16000, cost_model="msfcnn")
    assert e.value.min_ram == 42643


def test_latency_without_ram_limit_all_backends():
    for backend in ("cpsat", "cbc", "graph"):
        code, stdout, err = run("solve", "vww", "--backend", backend, "--json", "-")
        assert code == 0, err
        d = json.loads(stdout)
        assert d["cross_check"]["agree"]
        assert d["est_cycles"] <= d["vanilla_cycles"]
