"""A missing topic is a sentence, not a minute: writing to a topic a cluster does not create on
first use fails within seconds and says how to create it; where the cluster does create it,
producing to a new topic works as before.

The strict cluster is a second real local broker with ``auto.create.topics.enable=false``, started
once for this module on free ports (about 10 s on a 2-CPU machine).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import pytest

import eventml as em
from eventml import producer
from eventml.kafka import LocalKafka, free_port
from eventml.errors import ConfigError
from eventml.producer import _topic_exists

#: A functional bound, far below kafka-python's 60 s wait, far above TOPIC_WAIT_S: not a benchmark.
SECONDS = 20.0


@pytest.fixture(scope="module")
def strict_kafka(tmp_path_factory) -> str:
    """Bootstrap address of a real broker that never creates a topic on first use."""
    kafka = LocalKafka(port=free_port(), controller_port=free_port(), data_dir=tmp_path_factory.mktemp("strict-kafka"),
                       config={"auto.create.topics.enable": "false"})
    with kafka:
        yield kafka.bootstrap_servers


def _threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


@pytest.mark.integration
def test_writing_to_a_missing_topic_fails_in_seconds_saying_how_to_create_it(strict_kafka, topic, caplog):
    before = _threads()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="kafka"):
        with pytest.raises(em.TopicNotFoundError) as raised:
            em.produce(em.synthetic("sea", 10, seed=1), topic, bootstrap_servers=strict_kafka, progress=False)
    assert time.monotonic() - started < SECONDS
    error = raised.value
    assert isinstance(error, LookupError) and isinstance(error, em.EventmlError)
    assert (error.topic, error.bootstrap_servers) == (topic, strict_kafka)
    message = str(error)
    assert f"topic {topic!r} does not exist at {strict_kafka}" in message
    assert "automatic topic creation is off" in message
    assert f"eventml topics create {topic} --partitions 1 --bootstrap-servers {strict_kafka}" in message
    assert f'em.create_topic("{topic}", partitions=1, bootstrap_servers="{strict_kafka}")' in message
    assert "\n" not in message
    assert not [r for r in caplog.records if topic in r.getMessage()]  # one error, not a log line per retry
    assert _threads() <= before  # the producer was closed: no sender or network thread left behind
    assert topic not in em.list_topics(bootstrap_servers=strict_kafka)


@pytest.mark.integration
def test_after_create_topic_the_same_produce_works_and_reads_back(strict_kafka, topic):
    events = list(em.synthetic("sea", 50, seed=2))
    with pytest.raises(em.TopicNotFoundError):
        em.produce(events, topic, bootstrap_servers=strict_kafka, progress=False)
    assert em.create_topic(topic, partitions=1, bootstrap_servers=strict_kafka) is True
    report = em.produce(events, topic, bootstrap_servers=strict_kafka, progress=False)
    assert (report.sent, report.delivered) == (50, 50)
    assert [e.id for e in em.read_events(topic, bootstrap_servers=strict_kafka)] == [e.id for e in events]


@pytest.mark.integration
def test_a_topic_that_exists_is_waited_for_even_when_its_metadata_is_slower_than_the_short_wait(
        strict_kafka, topic, monkeypatch):
    em.create_topic(topic, partitions=2, bootstrap_servers=strict_kafka)
    monkeypatch.setattr(producer, "TOPIC_WAIT_S", 0.0)  # the short wait always runs out first
    asked = []
    monkeypatch.setattr(producer, "_topic_exists", lambda *args: asked.append(args[0]) or _topic_exists(*args))
    report = em.produce(em.synthetic("sea", 20, seed=3), topic, bootstrap_servers=strict_kafka, progress=False)
    assert asked == [topic]  # the short wait ran out and the cluster was asked
    assert report.delivered == 20
    assert len(em.read_events(topic, bootstrap_servers=strict_kafka)) == 20


@pytest.mark.integration
def test_the_cli_exits_2_with_one_sentence_about_the_missing_topic(strict_kafka, topic):
    proc = subprocess.run([sys.executable, "-m", "eventml.cli", "produce", "--source", "sea", "--events", "10",
                           "--topic", topic, "--bootstrap-servers", strict_kafka],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"eventml: error: topic {topic!r} does not exist at {strict_kafka}")
    assert f"eventml topics create {topic} --partitions 1" in lines[0]


@pytest.mark.integration
def test_a_new_topic_on_a_broker_that_creates_topics_is_still_created_by_producing(kafka_bootstrap, topic):
    assert topic not in em.list_topics(bootstrap_servers=kafka_bootstrap)
    report = em.produce(em.synthetic("sea", 30, seed=4), topic, bootstrap_servers=kafka_bootstrap, progress=False)
    assert report.delivered == 30
    assert topic in em.list_topics(bootstrap_servers=kafka_bootstrap)
    assert len(em.describe_topic(topic, bootstrap_servers=kafka_bootstrap)) == 1  # one partition
    assert len(em.read_events(topic, bootstrap_servers=kafka_bootstrap)) == 30


def test_broker_properties_given_to_local_kafka_override_its_defaults(tmp_path):
    kafka = LocalKafka(data_dir=tmp_path, config={"auto.create.topics.enable": "false", "num.partitions": "3"})
    lines = kafka.node.write_config().read_text().splitlines()
    assert "auto.create.topics.enable=false" in lines
    assert [line for line in lines if line.startswith("num.partitions=")] == ["num.partitions=3"]


@pytest.mark.parametrize("config", [{"auto.create.topics.enable": False}, {3: "x"}, {"a": "1\nb=2"},
                                    [("auto.create.topics.enable", "false")], "auto.create.topics.enable=false"])
def test_broker_properties_that_are_not_strings_are_refused_naming_the_parameter(tmp_path, config):
    with pytest.raises(ConfigError, match="LocalKafka's config"):
        LocalKafka(data_dir=tmp_path, config=config)
