"""The temporary Prefect server a command starts when no PREFECT_API_URL is set.

Each case runs in a child process of its own: this session's Prefect harness, once entered,
configures an API for every test in this one.
"""

import os
import subprocess
import sys
import textwrap
import time

from flows.prefect_api import answers


def command(body: str) -> list[str]:
    """A Python child running ``body`` inside `prefect_api`, with `url` bound."""
    script = textwrap.dedent(
        """
        import time
        from rich.console import Console
        from flows.prefect_api import answers, prefect_api, prefect_api_url
        assert prefect_api_url() is None
        with prefect_api(Console(stderr=True)) as url:
        """
    ) + textwrap.indent(textwrap.dedent(body), "    ")
    return [sys.executable, "-c", script]


def test_a_server_is_started_for_the_block_and_stopped_after_it() -> None:
    body = """
    assert prefect_api_url() == url
    assert answers(url)
    print(url)
    """
    child = subprocess.run(
        command(body), capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )
    assert child.returncode == 0, child.stderr
    assert child.stderr.startswith("starting Prefect (a temporary local server")
    assert not answers(child.stdout.strip())


def test_the_server_dies_with_a_command_killed_by_sigkill() -> None:
    body = """
    print(url, flush=True)
    time.sleep(120)
    """
    child = subprocess.Popen(
        command(body), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        url = child.stdout.readline().strip() if child.stdout else ""
        assert answers(url)
    finally:
        child.kill()
        child.wait()
    deadline = time.monotonic() + 15
    while answers(url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not answers(url)
