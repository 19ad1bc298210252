"""The send journal's durable appends: synced by a writer process of their own, in order, with
a disk's refusal raised as the OSError naming the file. Real processes, real files."""

import asyncio
import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from load.durable_append import DurableAppender

HANG_S = 30


def writers_of(parent: psutil.Process) -> list[psutil.Process]:
    """The writer processes a DurableAppender in ``parent`` started."""
    return [c for c in parent.children() if "durable_append_child" in " ".join(c.cmdline())]


def test_appends_are_in_the_file_once_their_futures_are_done(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"

    async def append() -> bytes:
        appender = DurableAppender(path)
        try:
            waits = [appender.append_synced(b"line %d\n" % n) for n in range(100)]
            appender.append(b"unwaited\n")
            await asyncio.wait_for(asyncio.gather(*waits), HANG_S)
            on_disk = path.read_bytes()
            await asyncio.wait_for(appender.append_synced(b"last\n"), HANG_S)
        finally:
            appender.close()
        return on_disk

    on_disk = asyncio.run(append())
    assert on_disk.startswith(b"".join(b"line %d\n" % n for n in range(100)))
    assert path.read_bytes() == on_disk.removesuffix(b"unwaited\n") + b"unwaited\nlast\n"


def test_close_syncs_what_no_one_waited_for_and_ends_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b"from an earlier attempt\n")

    async def append() -> psutil.Process:
        appender = DurableAppender(path)
        (writer,) = writers_of(psutil.Process())
        appender.append(b"queued\n")
        appender.close()
        return writer

    writer = asyncio.run(append())
    assert path.read_bytes() == b"from an earlier attempt\nqueued\n"
    assert not writer.is_running()


def test_a_full_device_fails_the_waiting_append_and_close_with_its_reason() -> None:
    async def append() -> tuple[OSError, OSError]:
        appender = DurableAppender(Path("/dev/full"))
        with pytest.raises(OSError) as waited:
            await asyncio.wait_for(appender.append_synced(b"line\n"), HANG_S)
        with pytest.raises(OSError) as closed:
            appender.close()
        return waited.value, closed.value

    for error in asyncio.run(append()):
        assert (error.errno, error.strerror, error.filename) == (
            errno.ENOSPC,
            "No space left on device",
            "/dev/full",
        )


def test_a_writer_that_dies_fails_the_waiting_append(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"

    async def append() -> OSError:
        appender = DurableAppender(path)
        await asyncio.wait_for(appender.append_synced(b"before\n"), HANG_S)
        (writer,) = writers_of(psutil.Process())
        writer.kill()
        with pytest.raises(OSError) as raised:
            await asyncio.wait_for(appender.append_synced(b"after\n"), HANG_S)
        with pytest.raises(OSError):
            appender.close()
        return raised.value

    error = asyncio.run(append())
    assert error.filename == str(path) and "the writer process stopped" in error.strerror
    assert path.read_bytes() == b"before\n"


def test_a_file_that_cannot_be_opened_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        DurableAppender(tmp_path / "missing" / "journal.jsonl")
    assert not writers_of(psutil.Process())


PARENT = """
import asyncio, os, sys
from pathlib import Path
from load.durable_append import DurableAppender

async def main():
    appender = DurableAppender(Path(sys.argv[1]))
    await appender.append_synced(b"synced\\n")
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_the_writer_sees_no_secret_and_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    env = {**os.environ, "MISTRAL_API_KEY": "secret-key-1234"}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(path)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline() == "ready\n"
        (writer,) = writers_of(psutil.Process(parent.pid))
        assert "secret-key-1234" not in str(writer.environ())
        parent.send_signal(signal.SIGKILL)
        parent.wait(HANG_S)
        writer.wait(HANG_S)  # its stdin ended with its parent: it exits, no orphan stays
    finally:
        parent.kill()
    assert path.read_bytes() == b"synced\n"
