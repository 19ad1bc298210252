"""`convo-etl emulator` serves in the foreground and stops cleanly; spawn_emulator runs it apart."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from emulator.config import EmulatorConfig
from emulator.server import spawn_emulator

CONVO_ETL = str(Path(sys.executable).parent / "convo-etl")
HEADERS = {"Authorization": "Bearer test-token"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_command_serves_prints_its_url_and_stops_cleanly(stop_signal):
    port = free_port()
    command = [CONVO_ETL, "emulator", "--port", str(port), "--conversations", "7", "--seed", "3"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.strip().endswith(f"http://127.0.0.1:{port}")
        listed = httpx.get(f"http://127.0.0.1:{port}/v1/conversations", headers=HEADERS)
        assert listed.status_code == 200 and len(listed.json()) == 7
        process.send_signal(stop_signal)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def test_a_busy_port_is_a_one_line_error_and_a_non_zero_exit():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [CONVO_ETL, "emulator", "--port", str(port)], capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"convo-etl emulator: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def test_spawn_emulator_serves_from_its_own_process_with_the_key_kept_out_of_argv():
    config = EmulatorConfig(conversations=25, seed=4, api_key="spawned-secret", fault_rate=0.0)
    with spawn_emulator(config) as emu:
        assert emu.pid != os.getpid()
        with open(f"/proc/{emu.pid}/cmdline", "rb") as cmdline:
            assert b"spawned-secret" not in cmdline.read()
        good = httpx.get(
            f"{emu.url}/v1/conversations", headers={"Authorization": "Bearer spawned-secret"}
        )
        bad = httpx.get(f"{emu.url}/v1/conversations", headers=HEADERS)
        pid = emu.pid
    assert good.status_code == 200 and len(good.json()) == 25
    assert bad.status_code == 401
    assert not Path(f"/proc/{pid}").exists()
