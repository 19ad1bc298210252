"""The browser rule of tests/conftest.py: no Chromium skips a browser test, or fails it under CI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BROWSER_TEST = "tests/test_replay_report.py::test_report_renders_in_headless_chromium"
ROOT = Path(__file__).resolve().parents[1]


def run_browser_test_without_browser(ci: str | None) -> subprocess.CompletedProcess[str]:
    """Run one browser test in a child pytest whose PATH holds only the venv's interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(Path(sys.executable).parent)
    if ci is not None:
        env["CI"] = ci
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", BROWSER_TEST]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize("ci", [None, "1"])
def test_a_browser_test_without_a_browser_is_skipped_or_fails_under_ci(ci: str | None):
    completed = run_browser_test_without_browser(ci)
    if ci is None:
        assert completed.returncode == 0, completed.stdout[-2000:]
        assert "1 skipped" in completed.stdout
        assert "no Chromium installed" in completed.stdout
    else:
        assert completed.returncode == 1, completed.stdout[-2000:]
        assert "CI must run the browser tests" in completed.stdout
