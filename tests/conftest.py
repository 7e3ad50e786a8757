import os
import sys
from pathlib import Path


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: the shared folder beside the checkout (CI has it; users may not)
SHARED = HERE.parent.parent / "shared"
SHARED_MODELS = SHARED / "models"

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_configure(config):
    from hypothesis import settings, HealthCheck
    settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow],
                              derandomize=True)
    settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("ci" if os.environ.get("CI") else "dev")


def require_tools(missing, what: str) -> None:
    """Skip a test whose toolchain is missing (users without the cross compilers), or fail it
    when MSFOPT_REQUIRE_TOOLCHAINS is set, as the README/CI test command does."""
    if not missing:
        return
    import pytest
    msg = f"{what} missing ({', '.join(missing)}): run scripts/install_toolchains.sh"
    if os.environ.get("MSFOPT_REQUIRE_TOOLCHAINS"):
        pytest.fail(msg)
    pytest.skip(msg)
