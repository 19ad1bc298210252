"""`convo-etl replay-report` on a warehouse of known rows: the HTML, and the page in chromium."""

import csv
import os
import stat
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner, Result

from emulator.server import RunningEmulator
from flows.cli import app
from load.warehouse import open_warehouse, warehouse_path
from transform.replay_schemas import REPLAY_EVENTS, REPLAY_RESULTS, REPLAY_RUNS

CHROMIUM_TIMEOUT_S = 60
RUN_ID = "run-known"
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HOSTILE_PROMPT = "<script>alert('pwned')</script> & <b>bold</b> café 日本語 🚀\nsecond line"
HOSTILE_OUTPUT = "Sure: <img src=x onerror=alert(1)> done"
VOID_TAGS = {"meta", "br", "link", "img", "input", "hr", "col", "source", "wbr"}


def result(row_number: int, status: str = "ok", **values: object) -> dict[str, object]:
    """A replay_results row of the known run, with defaults for what a test does not care about."""
    row: dict[str, object] = {
        "run_id": RUN_ID,
        "row_id": f"r{row_number}",
        "repeat_index": 0,
        "row_number": row_number,
        "mode": "start",
        "source_conversation_id": None,
        "from_entry_id": None,
        "conversation_id": f"conv_{row_number:032x}",
        "status": status,
        "error": None,
        "recovered": False,
        "attempts": 1,
        "output_text": None,
        "output_entry_id": None,
        "prompt_tokens": None,
        "completion_tokens": None,
        "total_tokens": None,
        "ttft_ms": None,
        "latency_ms": None,
        "events": 0,
        "started_at": T0,
        "finished_at": T0,
        "stream": True,
        "prompt": f"Question {row_number}?",
        "model": "mistral-small-latest",
        "agent_id": None,
        "thread": None,
        "extra": "{}",
        "variant": "",
    }
    row.update(values)
    return row


KNOWN_RESULTS = [
    result(1, prompt=HOSTILE_PROMPT, output_text=HOSTILE_OUTPUT, prompt_tokens=10,
           completion_tokens=20, total_tokens=30, ttft_ms=50.0, latency_ms=200.0, events=5),
    result(2, mode="append", thread="t1", output_text="Answer two.", prompt_tokens=12,
           completion_tokens=8, total_tokens=20, ttft_ms=70.0, latency_ms=300.0),
    result(3, mode="restart", recovered=True, attempts=2, output_text="Answer three.",
           prompt_tokens=5, completion_tokens=40, total_tokens=45, ttft_ms=90.0,
           latency_ms=450.0),
    result(4, "error", error="StreamCut: start_stream: HTTP 200: stream ended early",
           ttft_ms=40.0, latency_ms=120.0),
    result(5, "error", error="start_stream: HTTP 500: boom", latency_ms=80.0),
    result(6, "error", error="conversation.response.error 3000: model overloaded",
           ttft_ms=30.0, latency_ms=60.0),
]  # fmt: skip


def run_row(run_id: str, rows: int) -> dict[str, object]:
    """A finished replay_runs row."""
    return {
        "run_id": run_id,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=4),
        "source_file": "prompts/eval.csv",
        "rows": rows,
        "repeat": 1,
        "ok": None,
        "errors": None,
        "stream": True,
        "base_url": "http://127.0.0.1:8080",
        "options": '{"concurrency": 4}',
        "status": "completed",
    }


def known_events() -> list[dict[str, object]]:
    """The five stream events of row r1: started, three deltas, done."""
    types = ["conversation.response.started"] + ["message.output.delta"] * 3
    types.append("conversation.response.done")
    return [
        {
            "run_id": RUN_ID,
            "row_id": "r1",
            "repeat_index": 0,
            "seq": seq,
            "attempt": 0,
            "event_type": event_type,
            "received_at": T0,
            "elapsed_ms": float(seq),
            "data": "{}",
            "variant": "",
        }
        for seq, event_type in enumerate(types)
    ]


@pytest.fixture
def warehouse(data_dir: Path) -> Path:
    """A warehouse holding the known run, another run whose rows must not show up, and a run
    that has just started (no results yet)."""
    other = result(1, run_id="run-other", prompt="OTHER RUN PROMPT", latency_ms=9999.0)
    tables = {
        "replay_runs": pa.Table.from_pylist(
            [
                run_row(RUN_ID, 6),
                run_row("run-other", 1),
                {**run_row("run-empty", 3), "finished_at": None, "status": "running"},
            ],
            schema=REPLAY_RUNS,
        ),
        "replay_results": pa.Table.from_pylist([*KNOWN_RESULTS, other], schema=REPLAY_RESULTS),
        "replay_events": pa.Table.from_pylist(known_events(), schema=REPLAY_EVENTS),
    }
    with open_warehouse(data_dir) as connection:
        for name, table in tables.items():
            connection.register("rows_to_insert", table)
            connection.execute(f"INSERT INTO {name} BY NAME SELECT * FROM rows_to_insert")
            connection.unregister("rows_to_insert")
    return warehouse_path(data_dir)


@dataclass
class Node:
    """An element of a parsed HTML document: tag, attributes, children and direct text."""

    tag: str
    attrs: dict[str, str]
    children: list["Node"] = field(default_factory=list)
    parts: list["str | Node"] = field(default_factory=list)

    def text(self) -> str:
        """All text inside the element, as a browser's textContent gives it."""
        return "".join(p if isinstance(p, str) else p.text() for p in self.parts)

    def iter(self) -> "list[Node]":
        """This element and every element below it, in document order."""
        return [self, *(node for child in self.children for node in child.iter())]

    def find_all(self, tag: str, **attrs: str) -> "list[Node]":
        """Elements with this tag whose attributes contain the given values (class: one word)."""
        return [
            node
            for node in self.iter()
            if node.tag == tag
            and all(
                value in node.attrs.get("class", "").split()
                if name == "class_"
                else node.attrs.get(name) == value
                for name, value in attrs.items()
            )
        ]


class TreeBuilder(HTMLParser):
    """Parse HTML into Nodes with the standard library (the DOM chromium dumped, or our page)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(node)
        self.stack[-1].parts.append(node)
        if tag not in VOID_TAGS:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_TAGS:
            return
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].parts.append(data)


def parse_html(text: str) -> Node:
    """The element tree of an HTML document."""
    builder = TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def run_chromium(
    chromium: str, page: Path, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """Open a local page in headless chromium (offline flags, throwaway profile) with a timeout."""
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
        page.resolve().as_uri(),
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed


def png_facts(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed pixel rows of a PNG, read with the standard library."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat, offset = b"", 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        if data[offset + 4 : offset + 8] == b"IDAT":
            idat += data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    return width, height, zlib.decompress(idat)


def invoke(*args: str) -> Result:
    """Run the real `convo-etl` command line in-process."""
    return CliRunner().invoke(app, list(args))


def bar_titles(chart: Node) -> list[str]:
    """The tooltip of every bar of a chart."""
    return [bar.find_all("title")[0].text() for bar in chart.find_all("g", class_="bar")]


def test_report_renders_in_headless_chromium(
    warehouse: Path, data_dir: Path, tmp_path: Path, chromium: str
):
    outcome = invoke("replay-report", RUN_ID, "--data-dir", str(data_dir))
    report = data_dir / "reports" / f"replay-{RUN_ID}.html"
    assert outcome.exit_code == 0, outcome.output
    assert outcome.stdout.strip() == str(report)

    dom = parse_html(run_chromium(chromium, report, tmp_path, "--dump-dom").stdout)

    assert dom.find_all("code", id="run-id")[0].text() == RUN_ID
    fields = {dd.attrs["data-field"]: " ".join(dd.text().split()) for dd in dom.find_all("dd")
              if "data-field" in dd.attrs}  # fmt: skip
    assert fields == {
        "results": "6",
        "ok": "3",
        "errors": "3 1 recovered",
        "total-tokens": "95 27 in · 68 out",
        "latency": "300 ms p95 435 ms",
        "ttft": "70 ms p95 88 ms",
    }
    charts = {svg.attrs["data-chart"]: svg for svg in dom.find_all("svg", class_="chart")}
    assert set(charts) == {"latency", "ttft", "tokens", "errors"}
    assert sum(int(t.rsplit(": ", 1)[1]) for t in bar_titles(charts["latency"])) == 3
    assert sum(int(t.rsplit(": ", 1)[1]) for t in bar_titles(charts["ttft"])) == 3
    assert bar_titles(charts["tokens"])[:2] == [
        "r1: 10 prompt + 20 completion tokens",
        "r2: 12 prompt + 8 completion tokens",
    ]
    assert len(charts["tokens"].find_all("g", class_="bar")) == 6
    assert bar_titles(charts["errors"]) == [
        "HTTP 500: 1",
        "StreamCut: 1",
        "conversation.response.error 3000: 1",
    ]
    events = {tr.find_all("code")[0].text(): tr.find_all("td")[1].text()
              for tr in dom.find_all("table", id="events")[0].find_all("tr")[1:]}  # fmt: skip
    assert events == {
        "message.output.delta": "3",
        "conversation.response.started": "1",
        "conversation.response.done": "1",
    }

    rows = dom.find_all("tr", class_="result")
    assert [row.attrs["data-row-id"] for row in rows] == ["r1", "r2", "r3", "r4", "r5", "r6"]
    first = rows[0]
    assert first.find_all("td", class_="prompt")[0].text() == HOSTILE_PROMPT
    assert first.find_all("td", class_="output")[0].text() == HOSTILE_OUTPUT
    assert [r.find_all("span", class_="badge")[0].text() for r in rows] == ["ok"] * 3 + [
        "error"
    ] * 3
    assert rows[2].find_all("span", class_="recovered")
    assert rows[4].find_all("div", class_="error")[0].text() == "start_stream: HTTP 500: boom"
    # The hostile prompt and output stayed text: the browser built no script or img from them.
    assert dom.find_all("script") == []
    assert dom.find_all("img") == []
    assert "OTHER RUN PROMPT" not in dom.text()

    screenshot = tmp_path / "r.png"
    run_chromium(
        chromium, report, tmp_path, f"--screenshot={screenshot}", "--window-size=1280,2000"
    )
    width, height, pixels = png_facts(screenshot)
    assert (width, height) == (1280, 2000)
    # A blank page is all 255s: a drawn one has text, bars and colours.
    assert len(set(pixels)) > 100
    assert sum(1 for byte in pixels[::7] if byte != 255) > len(pixels[::7]) // 50


def test_html_is_self_contained_and_escaped(warehouse: Path, data_dir: Path, tmp_path: Path):
    output = tmp_path / "out" / "report.html"
    outcome = invoke("replay-report", RUN_ID, "--data-dir", str(data_dir), "--output", str(output))
    assert outcome.exit_code == 0, outcome.output
    assert outcome.stdout.strip() == str(output)
    assert not (data_dir / "reports").exists()
    html = output.read_text(encoding="utf-8")

    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold" in html
    assert "café 日本語 🚀\nsecond line" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    page = parse_html(html)
    tags = {node.tag for node in page.iter()}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    linked = [node.attrs for node in page.iter() if {"src", "href"} & set(node.attrs)]
    assert linked == []
    style = page.find_all("style")[0].text()
    assert "url(" not in style
    assert "@import" not in style
    assert len(page.find_all("tr", class_="result")) == 6


def test_max_rows_limits_the_table_but_not_the_charts(warehouse: Path, data_dir: Path):
    outcome = invoke("replay-report", RUN_ID, "--data-dir", str(data_dir), "--max-rows", "2")
    assert outcome.exit_code == 0, outcome.output
    page = parse_html(Path(outcome.stdout.strip()).read_text(encoding="utf-8"))
    assert [tr.attrs["data-row-id"] for tr in page.find_all("tr", class_="result")] == ["r1", "r2"]
    tokens = page.find_all("svg", **{"data-chart": "tokens"})[0]
    assert len(tokens.find_all("g", class_="bar")) == 6
    note = " ".join(page.find_all("p", id="truncated")[0].text().split())
    assert note.startswith("Showing the first 2 of 6 results")


def test_rewriting_a_report_replaces_it_and_leaves_no_temp_file(warehouse: Path, data_dir: Path):
    report = data_dir / "reports" / f"replay-{RUN_ID}.html"
    report.parent.mkdir()
    report.write_text("stale", encoding="utf-8")
    outcome = invoke("replay-report", RUN_ID, "--data-dir", str(data_dir))
    assert outcome.exit_code == 0, outcome.output
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in report.parent.iterdir()) == [report.name]


def test_run_without_results_yet_renders_empty_charts(warehouse: Path, data_dir: Path):
    outcome = invoke("replay-report", "run-empty", "--data-dir", str(data_dir))
    assert outcome.exit_code == 0, outcome.output
    page = parse_html(Path(outcome.stdout.strip()).read_text(encoding="utf-8"))
    charts = page.find_all("svg", class_="chart")
    assert [svg.find_all("text", class_="empty")[0].text() for svg in charts] == [
        "no data",
        "no data",
        "no data",
        "no errors",
    ]
    assert page.find_all("tr", class_="result") == []
    subtitle = " ".join(page.find_all("p", class_="subtitle")[0].text().split())
    assert "finished not finished" in subtitle
    assert page.find_all("span", id="run-status")[0].text() == "running"


def test_unknown_run_id_is_one_clear_line(warehouse: Path, data_dir: Path):
    outcome = invoke("replay-report", "no-such-run", "--data-dir", str(data_dir))
    assert outcome.exit_code == 1
    assert outcome.stdout == ""
    assert outcome.stderr == f"error: no replay run with id 'no-such-run' in {warehouse}\n"
    assert not (data_dir / "reports").exists()


def test_missing_warehouse_is_one_clear_line(data_dir: Path):
    outcome = invoke("replay-report", RUN_ID, "--data-dir", str(data_dir))
    assert outcome.exit_code == 1
    assert outcome.stderr == (
        f"error: no warehouse at {data_dir / 'warehouse.duckdb'}: run `convo-etl replay` first\n"
    )
    assert not (data_dir / "warehouse.duckdb").exists()


def test_report_of_a_replay_against_the_emulator(
    prefect_harness: None,
    make_emulator: Callable[..., RunningEmulator],
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chromium: str,
):
    emulator = make_emulator(conversations=2, seed=3, api_key="e2e-key", token_delay_ms=1.0)
    monkeypatch.setenv("MISTRAL_API_KEY", "e2e-key")
    prompts = tmp_path / "prompts.csv"
    with prompts.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "model", "thread", "conversation_id"])
        writer.writerow(["a", "<i>Hello</i> & ünïcödé?", "mistral-small-latest", "", ""])
        writer.writerow(["b", "First turn", "mistral-small-latest", "t1", ""])
        writer.writerow(["c", "Second turn", "", "t1", ""])
        writer.writerow(["d", "Into the void", "", "", "conv_" + "0" * 32])
    replayed = invoke(
        "replay", str(prompts), "--data-dir", str(data_dir), "--base-url", emulator.url,
        "--run-id", "e2e-run", "--concurrency", "2",
    )  # fmt: skip
    assert replayed.exit_code == 1, replayed.output  # row d fails: its conversation is unknown

    outcome = invoke("replay-report", "e2e-run", "--data-dir", str(data_dir))
    assert outcome.exit_code == 0, outcome.output
    report = Path(outcome.stdout.strip())
    dom = parse_html(run_chromium(chromium, report, tmp_path, "--dump-dom").stdout)

    rows = {tr.attrs["data-row-id"]: tr for tr in dom.find_all("tr", class_="result")}
    assert list(rows) == ["a", "b", "c", "d"]
    for row_id in "abc":
        prompt = rows[row_id].find_all("td", class_="prompt")[0].text()
        output = rows[row_id].find_all("td", class_="output")[0].text()
        assert output == emulator.store.reply_text(prompt)
    assert rows["a"].find_all("td", class_="prompt")[0].text() == "<i>Hello</i> & ünïcödé?"
    assert [rows[r].find_all("span", class_="mode")[0].text() for r in "abcd"] == [
        "start",
        "start",
        "append",
        "append",
    ]
    charts = {svg.attrs["data-chart"]: svg for svg in dom.find_all("svg", class_="chart")}
    assert sum(int(t.rsplit(": ", 1)[1]) for t in bar_titles(charts["latency"])) == 3
    assert sum(int(t.rsplit(": ", 1)[1]) for t in bar_titles(charts["ttft"])) == 3
    assert len(bar_titles(charts["tokens"])) == 4
    assert bar_titles(charts["errors"]) == ["HTTP 404: 1"]
    fields = {dd.attrs["data-field"]: dd.text().split()[0] for dd in dom.find_all("dd")
              if "data-field" in dd.attrs}  # fmt: skip
    assert (fields["results"], fields["ok"], fields["errors"]) == ("4", "3", "1")
    assert dom.find_all("i") == []
    assert dom.find_all("table", id="events")


def test_the_report_file_has_the_mode_the_umask_gives(warehouse: Path, data_dir: Path):
    previous = os.umask(0o022)
    try:
        outcome = invoke("replay-report", RUN_ID, "--data-dir", str(data_dir))
    finally:
        os.umask(previous)
    assert outcome.exit_code == 0, outcome.output
    assert stat.S_IMODE(Path(outcome.stdout.strip()).stat().st_mode) == 0o644


def test_a_symlink_is_written_through_not_replaced(warehouse: Path, data_dir: Path, tmp_path: Path):
    target = tmp_path / "elsewhere" / "report.html"
    target.parent.mkdir()
    target.write_text("old", encoding="utf-8")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    outcome = invoke("replay-report", RUN_ID, "--data-dir", str(data_dir), "-o", str(link))
    assert outcome.exit_code == 0, outcome.output
    assert link.is_symlink()
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_dev_stdout_prints_the_page(warehouse: Path, data_dir: Path):
    convo_etl = Path(sys.executable).parent / "convo-etl"
    command = [str(convo_etl), "replay-report", RUN_ID, "--data-dir", str(data_dir)]
    completed = subprocess.run(
        [*command, "-o", "/dev/stdout"], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("<!DOCTYPE html>")
    assert completed.stdout.rstrip().endswith("</html>")


def test_a_directory_as_output_is_refused_in_one_line(warehouse: Path, data_dir: Path):
    outcome = invoke("replay-report", RUN_ID, "--data-dir", str(data_dir), "-o", str(data_dir))
    assert outcome.exit_code == 1
    assert outcome.stderr == f"error: cannot write {data_dir}: it is a directory\n"
