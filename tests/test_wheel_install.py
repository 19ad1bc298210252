"""The distribution as built: a wheel, installed outside the source tree, runs demo and replay.

A fresh venv that downloads every dependency takes minutes; this one gets them from the test
venv's site-packages through a path entry (a .pth line adds the directory, but not the .pth files
in it, so the editable install of this checkout stays out of sight). The wheel itself is
installed with --no-deps, and the demo runs from a directory outside the checkout.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import orjson
import pytest
from prefect.settings import PREFECT_API_URL

from emulator.server import RunningEmulator

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (
    "pyproject.toml",
    "README.md",
    "flows",
    "extract",
    "transform",
    "load",
    "emulator",
    "sql",
)


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    """Run a command to its end; fail the test with its output if it fails."""
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the sources (the checkout gets no build/ or egg-info)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, source / name)
    out = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), "."]
    run(pip, cwd=source)
    (built,) = out.glob("convo_etl-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the wheel (no deps) that finds the dependencies in the test venv."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=False)
    python = home / "bin" / "python"
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], home)
    (Path(site.stdout.strip()) / "dependencies.pth").write_text(
        sysconfig.get_path("purelib") + "\n", encoding="utf-8"
    )
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    run([*install, "--no-deps", str(wheel)], cwd=home)
    return home


def test_the_wheel_carries_the_sql_and_the_report_template(installed: Path) -> None:
    python = str(installed / "bin" / "python")
    probe = (
        "import flows, sql, load.replay_report_html as h; from importlib import resources; "
        "print(flows.__file__); print(len(list(resources.files('sql').rglob('*.sql')))); "
        "print(h.report_environment().get_template(h.TEMPLATE_NAME).name)"
    )
    out = run([python, "-c", probe], cwd=installed).stdout.splitlines()
    assert out[0].startswith(str(installed)), out
    assert int(out[1]) == len(list((ROOT / "sql").rglob("*.sql")))
    assert out[2] == "replay_report.html.j2"


@pytest.mark.usefixtures("prefect_harness")
def test_the_installed_command_runs_the_demo(installed: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MISTRAL_API_KEY"}
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    data_dir = tmp_path / "data"
    command = [str(installed / "bin" / "convo-etl"), "demo", "--conversations", "50"]
    result = run([*command, "--data-dir", str(data_dir)], cwd=tmp_path, env=env, timeout=180)
    assert "Incremental export" in result.stdout
    assert (data_dir / "warehouse.duckdb").exists()


@pytest.mark.usefixtures("prefect_harness")
def test_the_installed_command_replays_a_prompt_set(
    installed: Path, tmp_path: Path, emulator: RunningEmulator
) -> None:
    """The replay's journal writer is a script of the package, run by its own interpreter."""
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "MISTRAL_API_KEY": "k"}
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("id,prompt\na,Hello?\nb,Why?\n", encoding="utf-8")
    data_dir = tmp_path / "data"
    command = [str(installed / "bin" / "convo-etl"), "replay", str(prompts), "--run-id", "w"]
    command += ["--model", "mistral-small-latest", "--base-url", emulator.url]
    run([*command, "--data-dir", str(data_dir)], cwd=tmp_path, env=env, timeout=180)
    journal = (data_dir / "replay" / "journal" / "w.jsonl").read_bytes().splitlines()
    kinds = sorted(orjson.loads(line)["kind"] for line in journal)
    assert kinds == ["send", "send", "started", "started", "stored", "stored"]
