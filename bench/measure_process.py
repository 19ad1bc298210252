"""Run one child command while sampling its CPU time and memory, and the emulator's CPU time.

Each benchmark row runs in its own process so its CPU and memory are its own; sampling every
50 ms keeps a timeline, so that CPU spent in a window the child reports afterwards (the export's
fetch phase) can be read off it. Peak memory is the kernel's high-water mark (VmHWM), so a
short spike between two samples is not missed.
"""

import contextlib
import resource
import tempfile
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path

import psutil

SAMPLE_INTERVAL_S = 0.05


@dataclass(frozen=True)
class Sample:
    """One look at the child: when (epoch seconds), and its CPU seconds so far."""

    at: float
    cpu_s: float


@dataclass
class MeasuredRun:
    """What a child did: output, wall and CPU time (own, and with its descendants), peak memory
    (own, and the sum of its descendants' peaks), and the emulator's CPU time meanwhile."""

    returncode: int
    stdout: str
    stderr: str
    started_at: float
    finished_at: float
    cpu_s: float
    tree_cpu_s: float
    peak_rss_mb: float
    descendants_peak_rss_mb: float
    emulator_cpu_s: float
    samples: list[Sample] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        """Wall time from spawning the child to its exit."""
        return self.finished_at - self.started_at

    def cpu_between(self, start: float, end: float) -> float:
        """The child's own CPU seconds between two epoch times, to within one sample interval."""
        times = [sample.at for sample in self.samples]
        first = self.samples[min(bisect_left(times, start), len(times) - 1)]
        last = self.samples[max(bisect_left(times, end) - 1, 0)]
        return max(last.cpu_s - first.cpu_s, 0.0)


def cpu_seconds(process: psutil.Process) -> float:
    """User plus system CPU seconds of one process."""
    times = process.cpu_times()
    return times.user + times.system


def peak_rss_mb(process: psutil.Process) -> float:
    """The process's resident-memory high-water mark in MB (Linux), else its current RSS."""
    status = Path(f"/proc/{process.pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return process.memory_info().rss / 2**20


def run_measured(
    command: list[str], env: dict[str, str], emulator: psutil.Process, cwd: Path | None = None
) -> MeasuredRun:
    """Run `command` to its end, sampling it (and its descendants' memory) every 50 ms."""
    emulator_cpu_before = cpu_seconds(emulator)
    tree_cpu_before = _reaped_children_cpu_s()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started_at = time.time()
        child = psutil.Popen(command, stdout=out, stderr=err, env=env, cwd=cwd)
        samples: list[Sample] = []
        peaks: dict[int, float] = {}
        cpu_s = 0.0
        while child.poll() is None:
            # The child or one of its descendants may exit between two calls here.
            with contextlib.suppress(psutil.Error, OSError):
                cpu_s = cpu_seconds(child)
                samples.append(Sample(time.time(), cpu_s))
                for process in [child, *child.children(recursive=True)]:
                    peaks[process.pid] = max(peaks.get(process.pid, 0.0), peak_rss_mb(process))
            time.sleep(SAMPLE_INTERVAL_S)
        finished_at = time.time()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    samples.append(Sample(finished_at, cpu_s))
    return MeasuredRun(
        returncode=child.returncode,
        stdout=stdout,
        stderr=stderr,
        started_at=started_at,
        finished_at=finished_at,
        cpu_s=cpu_s,
        tree_cpu_s=_reaped_children_cpu_s() - tree_cpu_before,
        peak_rss_mb=peaks.pop(child.pid, 0.0),
        descendants_peak_rss_mb=sum(peaks.values()),
        emulator_cpu_s=cpu_seconds(emulator) - emulator_cpu_before,
        samples=samples,
    )


def _reaped_children_cpu_s() -> float:
    """CPU seconds of every finished child of this process, and of their finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
