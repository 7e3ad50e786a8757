import importlib.util
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: the real-models folder of the shared folder beside the checkout (CI has it; users may not)
SHARED_MODELS = HERE.parent.parent / "shared" / "models"

os.environ.setdefault("MPLBACKEND", "Agg")


def examples(n: int) -> int:
    """A hypothesis test's example count: ``n`` times ``MSFOPT_HYPOTHESIS_SCALE`` (default 1;
    scripts/nightly.sh runs the random tests with more examples)."""
    try:
        scale = max(1, int(os.environ.get("MSFOPT_HYPOTHESIS_SCALE", "1")))
    except ValueError:
        scale = 1
    return n * scale


def toolchains_required() -> bool:
    """MSFOPT_REQUIRE_TOOLCHAINS set to anything but '' / '0' (CI): every resource a test needs
    must be there; a missing one fails the test instead of skipping it."""
    return os.environ.get("MSFOPT_REQUIRE_TOOLCHAINS", "").strip() not in ("", "0")


def _importable(mod: str) -> bool:
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


#: every external resource the tests use: name -> (present?, how to get it)
RESOURCES = {
    "onnxruntime": (lambda: _importable("onnxruntime"), "pip install -e '.[test]'"),
    "tflite-micro": (lambda: _importable("tflite_micro"), "pip install -e '.[test]'"),
    "tflite": (lambda: _importable("tflite"), "pip install -e '.[test]'"),
    "LiteRT": (lambda: _importable("ai_edge_litert"), "pip install -e '.[test]' (ai-edge-litert)"),
    "../shared/models": (lambda: SHARED_MODELS.is_dir(),
                         f"the real-models folder {SHARED_MODELS} beside the checkout"),
}


def missing_resources(*names: str) -> list[str]:
    return [n for n in names if not RESOURCES[n][0]()]


def _skip_or_fail(msg: str) -> None:
    if toolchains_required():
        pytest.fail(f"{msg} (MSFOPT_REQUIRE_TOOLCHAINS=1: required)", pytrace=False)
    pytest.skip(msg, allow_module_level=True)


def require(*names: str) -> None:
    """The one guard for the tests' external resources (:data:`RESOURCES`): skip when one is
    missing, or fail under MSFOPT_REQUIRE_TOOLCHAINS=1. Also usable at module level."""
    miss = missing_resources(*names)
    if miss:
        _skip_or_fail(f"{', '.join(miss)} missing: "
                      + "; ".join(RESOURCES[n][1] for n in miss))


def require_tools(missing, what: str) -> None:
    """Skip a test whose toolchain is missing (users without the cross compilers), or fail it
    when MSFOPT_REQUIRE_TOOLCHAINS is set, as the README/CI test command does."""
    if missing:
        _skip_or_fail(f"{what} missing ({', '.join(missing)}): run scripts/install_toolchains.sh")


def pytest_configure(config):
    from hypothesis import settings, HealthCheck
    settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow],
                              derandomize=True)
    settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("ci" if os.environ.get("CI") else "dev")


def _no_skip(report) -> None:
    """Under MSFOPT_REQUIRE_TOOLCHAINS=1 a skip anywhere (a ``skipif`` on a missing resource, a
    module-level ``importorskip``) fails instead: CI runs every test or fails."""
    if toolchains_required() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under MSFOPT_REQUIRE_TOOLCHAINS=1 (required): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _no_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _no_skip(outcome.get_result())


@pytest.fixture(autouse=True)
def no_bounds_failures(request):
    """A test that uses a bounds-checked runtime library (a ``lib`` fixture whose hook records
    the failures in ``lib._msgs``) fails when one of its view accesses left its buffer."""
    if "lib" not in request.fixturenames:
        yield
        return
    lib = request.getfixturevalue("lib")
    if not hasattr(lib, "_msgs"):
        yield
        return
    before = lib.msf_bounds_failures()
    yield
    assert lib.msf_bounds_failures() == before, lib._msgs[-3:]


@pytest.fixture(scope="session", autouse=True)
def kept_oracle_workers():
    """Every reference interpreter call of the session goes to one long-lived child per engine
    (``oracle_engines.kept_workers``: the same requests and isolation, restarted after a crash),
    instead of a Python + interpreter start-up (~0.4 s) per call."""
    from msfopt import oracle_engines
    with oracle_engines.kept_workers():
        yield
