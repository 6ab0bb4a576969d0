"""``tierup simulate --trace-file``: JSONL and CSV request logs, and errors that name the line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.support import EXAMPLE_CONFIG
from tierup.cli import app
from tierup.simulate.request_files import TraceFileError, read_trace_file

POLICIES = ("always-serverless", "always-reserved", "reactive", "tierup", "hindsight")


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _burst(minutes: int = 30, per_minute: int = 120):
    start = 1_700_000_000
    return [{"timestamp": start + minute * 60 + n * 60 / per_minute, "input_tokens": 4000, "output_tokens": 50,
             "prefix_hash": "abc"} for minute in range(minutes) for n in range(per_minute)]


def test_jsonl_and_csv_read_alike(tmp_path):
    rows = _burst(2, 3)
    from_jsonl = read_trace_file(_jsonl(tmp_path / "t.jsonl", rows))
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("timestamp,prompt_tokens,completion_tokens\n" + "".join(
        f"{row['timestamp']},{row['input_tokens']},{row['output_tokens']}\n" for row in rows))
    from_csv = read_trace_file(csv_path)
    assert from_jsonl.arrival_s.tolist() == from_csv.arrival_s.tolist()
    assert from_jsonl.prompt_tokens.sum() == 6 * 4000 and from_csv.completion_tokens.sum() == 6 * 50


def test_iso_timestamps_are_utc(tmp_path):
    path = _jsonl(tmp_path / "t.jsonl", [{"timestamp": "2023-11-16T18:15:46Z", "input_tokens": 1, "output_tokens": 1},
                                        {"timestamp": "2023-11-16T18:15:47", "input_tokens": 1, "output_tokens": 1}])
    assert read_trace_file(path).arrival_s.tolist() == [1700158546.0, 1700158547.0]


@pytest.mark.parametrize("content, message", [
    ('{"timestamp": 1, "input_tokens": 5, "output_tokens": 1}\n{"timestamp": 2, "input_tokens": "many",'
     ' "output_tokens": 1}\n', "t.jsonl line 2, column input_tokens: 'many' is not a number"),
    ('{"timestamp": 1, "input_tokens": 5}\n', "t.jsonl line 1: column output_tokens is missing"),
    ('{"timestamp": 1, "input_tokens": 5, "output_tokens": -3}\n', "line 1, column output_tokens: -3 must be"),
    ('{"timestamp": "yesterday", "input_tokens": 5, "output_tokens": 3}\n', "line 1, column timestamp: 'yesterday'"),
    ('\n{"timestamp": 1, "input_tokens": 5, "output_tokens": 3\n', "t.jsonl line 2, column 55: not JSON"),
])
def test_a_bad_line_is_named(tmp_path, content, message):
    path = tmp_path / "t.jsonl"
    path.write_text(content)
    with pytest.raises(TraceFileError, match=message.replace("(", r"\(")):
        read_trace_file(path)


def test_a_bad_csv_cell_is_named_with_its_file_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("timestamp,input_tokens,output_tokens\n1,5,3\n2,5,x\n")
    with pytest.raises(TraceFileError, match="t.csv line 3, column output_tokens: 'x' is not a number"):
        read_trace_file(path)


def test_simulate_a_trace_file_prints_every_policy(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    path = _jsonl(tmp_path / "burst.jsonl", _burst())
    result = CliRunner().invoke(app, ["simulate", "--trace-file", str(path), "--config", str(EXAMPLE_CONFIG)])
    assert result.exit_code == 0, result.output
    assert "burst.jsonl: 3,600 requests" in result.output
    for policy in POLICIES:
        assert policy in result.output


def test_simulate_a_bad_trace_file_exits_2_naming_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,input_tokens,output_tokens\n1,5,3\n2,,3\n")
    result = CliRunner().invoke(app, ["simulate", "--trace-file", str(path), "--config", str(EXAMPLE_CONFIG)])
    assert result.exit_code == 2
    assert "bad.csv line 3: column input_tokens is missing" in result.output


def test_simulate_prices_a_batch_stream_against_on_demand(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    path = _jsonl(tmp_path / "burst.jsonl", _burst())
    args = ["simulate", "--trace-file", str(path), "--config", str(EXAMPLE_CONFIG), "--batch-lines", "500",
            "--batch-deadline-h", "24", "--batch-arrive-h", "0.1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    title = "burst.jsonl: a batch of 500 lines (800 + 200 tokens each) arriving 0.1 h in, due within 24 h"
    assert title in result.output
    table = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]]
             for line in result.output.splitlines() if line.startswith("│")}
    # 500 x 1000 tokens on-demand at 0.22 USD/Mtok; the promoted route's idle capacity takes some of
    # them ($0 more) until the trace ends, the rest go to a Bedrock job at half the price
    assert table["all on-demand"][5:7] == ["0.1100", "100.0%"]
    for routing in ("tierup, blind", "tierup"):
        reserved, bedrock, on_demand, missed, usd = table[routing][1:6]
        assert int(reserved) > 0 and int(reserved) + int(bedrock) == 500 and on_demand == missed == "0"
        assert float(usd) == round(int(bedrock) * 1000 * 0.11e-6, 4)


def test_simulate_refuses_a_batch_arriving_after_the_trace(tmp_path):
    path = _jsonl(tmp_path / "burst.jsonl", _burst())
    result = CliRunner().invoke(app, ["simulate", "--trace-file", str(path), "--config", str(EXAMPLE_CONFIG),
                                      "--batch-lines", "10", "--batch-arrive-h", "5"])
    assert result.exit_code == 2
    assert "past the end of burst.jsonl" in result.output
