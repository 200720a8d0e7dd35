"""The eventml command against the real broker."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

import eventml as em


def eventml(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "eventml.cli", *args], capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


@pytest.mark.integration
def test_produce_then_consume_prints_the_same_events(kafka_bootstrap, topic):
    out = eventml("produce", "--source", "sea", "--events", "200", "--topic", topic, "--seed", "3",
                  "--drift-at", "100", "--quiet")
    assert "produced 200 of 200 events" in out.stdout
    got = eventml("consume", "--topic", topic, "--from-beginning", "--max-events", "200", "--idle-timeout", "5")
    lines = [orjson.loads(line) for line in got.stdout.splitlines()]
    expected = [e.to_dict() for e in em.synthetic("sea", 200, seed=3, drift_at=100)]
    assert lines == expected
    assert "read 200 events" in got.stderr


@pytest.mark.integration
def test_consume_from_an_offset_and_a_limit(kafka_bootstrap, topic):
    eventml("produce", "--source", "hyperplane", "--events", "50", "--topic", topic, "--quiet")
    got = eventml("consume", "--topic", topic, "--offset", "45", "--idle-timeout", "1")
    assert [orjson.loads(line)["id"] for line in got.stdout.splitlines()] == [f"e-{i}" for i in range(45, 50)]


@pytest.mark.integration
def test_topics_describe_shows_the_records(kafka_bootstrap, topic):
    eventml("topics", "create", topic, "--partitions", "2")
    eventml("produce", "--source", "sea", "--events", "30", "--topic", topic, "--quiet")
    described = eventml("topics", "describe", topic).stdout
    assert "partition" in described and len(described.splitlines()) == 3


def test_an_unknown_source_lists_the_known_ones():
    proc = eventml("produce", "--source", "nope", "--events", "5", "--topic", "t", check=False)
    assert proc.returncode == 2
    assert "invalid choice: 'nope'" in proc.stderr and "sea" in proc.stderr


def test_no_broker_is_one_sentence_not_a_traceback():
    proc = eventml("consume", "--topic", "t", "--bootstrap-servers", "127.0.0.1:1", check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("eventml: error: no Kafka broker answered at 127.0.0.1:1")
    assert "Traceback" not in proc.stderr
