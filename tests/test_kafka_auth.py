"""Authenticated Kafka: a real broker with a SASL (PLAIN) listener. The right credentials reach
every client — kafka-python's (produce, read, topics, dead letters) and confluent-kafka's (the live
updater) — from keywords, the EVENTML_* environment or the command line; a wrong password or a
mechanism the broker does not enable is one sentence within seconds, and the password is in no
message and no log line."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import pytest

import eventml as em
from eventml.consumer import read_dead_letters
from eventml.errors import KafkaAuthError
from eventml.kafka import LocalKafka, free_port
from eventml.kafka.settings import ENV_NAMES, KafkaSettings

pytestmark = pytest.mark.integration

PASSWORD = "alice-s3cret-91f2"
WRONG = "not-the-password-5d0c"


@pytest.fixture(scope="module")
def sasl_servers(tmp_path_factory):
    """The bootstrap address of a local broker whose client listener requires SASL/PLAIN (user alice)."""
    port, controller, sasl = free_port(), free_port(), free_port()
    jaas = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
            f'password="admin-secret" user_alice="{PASSWORD}";')
    kafka = LocalKafka(port=port, controller_port=controller, data_dir=tmp_path_factory.mktemp("sasl-kafka"), config={
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},SASL_PLAINTEXT://127.0.0.1:{sasl}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
    })
    with kafka:
        yield f"127.0.0.1:{sasl}"


def alice(servers: str, password: str = PASSWORD, **changes) -> KafkaSettings:
    return KafkaSettings(servers, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="alice",
                         sasl_password=password, environ={}).replace(**changes)


def test_the_right_credentials_reach_every_kafka_python_helper(sasl_servers, topic):
    settings = alice(sasl_servers)
    assert em.create_topic(topic, partitions=2, kafka=settings) is True
    assert topic in em.list_topics(kafka=settings)
    events = list(em.synthetic("sea", 50, seed=1))
    records = [*[e.to_dict() for e in events[:25]], b"not json", *[e.to_dict() for e in events[25:]]]
    with em.producer.EventProducer(topic, kafka=settings) as producer:
        for record in records:
            producer.send_raw(record) if isinstance(record, bytes) else producer.send(record)
    assert producer.report.delivered == 51
    assert sorted(e.id for e in em.read_events(topic, kafka=settings)) == sorted(e.id for e in events)
    assert em.describe_topic(topic, kafka=settings)["records"].sum() == 51
    dead = read_dead_letters(topic, kafka=settings, idle_timeout_s=5)  # written with the same settings
    assert list(dead["reason"]) == ["not_json"]


def test_the_environment_alone_connects_and_keywords_override_it(sasl_servers, topic, monkeypatch):
    env = alice(sasl_servers).to_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    report = em.produce(em.synthetic("sea", 20, seed=2), topic, progress=False)
    assert report.delivered == 20
    assert len(em.read_events(topic)) == 20
    with pytest.raises(KafkaAuthError):
        em.read_events(topic, sasl_password=WRONG)


def test_the_live_updater_authenticates_its_confluent_clients(sasl_servers, topic, tmp_path):
    settings = alice(sasl_servers)
    em.produce(em.synthetic("sea", 300, seed=3), topic, kafka=settings, progress=False)
    updater = em.LiveUpdater(topic, f"{topic}.pred", state_dir=tmp_path / "state", kafka=settings, max_events=300,
                             idle_timeout_s=20)
    stats = updater.run()
    assert stats.events == 300
    predictions = em.read_predictions(f"{topic}.pred", kafka=settings)
    assert len(predictions) == 300 and predictions["id"].is_unique


def test_a_wrong_password_is_one_sentence_for_both_clients_and_never_shown(sasl_servers, topic, tmp_path, caplog):
    settings = alice(sasl_servers, WRONG)
    with caplog.at_level(logging.DEBUG):
        started = time.monotonic()
        with pytest.raises(KafkaAuthError) as produced:
            em.produce(em.synthetic("sea", 5), topic, kafka=settings, progress=False)
        assert time.monotonic() - started < 10
        started = time.monotonic()
        with pytest.raises(KafkaAuthError) as live:
            em.LiveUpdater(topic, f"{topic}.pred", state_dir=tmp_path / "state", kafka=settings,
                           idle_timeout_s=1).run()
        assert time.monotonic() - started < 10
        # kafka-python itself, past eventml's check (as if the password changed within its minute),
        # logs at DEBUG what it sends, a PLAIN password too, and times out: then the check runs again
        from eventml.kafka.connection import _verified

        _verified[settings] = time.monotonic()
        with pytest.raises(KafkaAuthError) as listed:
            em.list_topics(kafka=settings, bootstrap_timeout_ms=2000)
    for error in (produced.value, live.value, listed.value):
        assert error.reason == "credentials"
        assert "refused the PLAIN login of user 'alice'" in str(error) and "sasl_password" in str(error)
        assert WRONG not in str(error) and WRONG not in repr(error)
    assert any(record.name.startswith("kafka.") for record in caplog.records)
    assert WRONG not in caplog.text and "***" in caplog.text


def test_a_mechanism_the_broker_does_not_enable_says_so(sasl_servers, topic):
    with pytest.raises(KafkaAuthError) as info:
        em.produce(em.synthetic("sea", 5), topic, kafka=alice(sasl_servers, sasl_mechanism="SCRAM-SHA-256"),
                   progress=False)
    assert info.value.reason == "mechanism" and "SCRAM-SHA-256" in str(info.value)


def _eventml(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eventml.cli", *args], capture_output=True, text=True, timeout=120,
                          env=env, input=stdin)


def test_the_command_takes_the_options_and_the_password_only_from_a_file_or_the_environment(
        sasl_servers, topic, tmp_path, monkeypatch):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES.values()}
    options = ["--bootstrap-servers", sasl_servers, "--security-protocol", "sasl_plaintext", "--sasl-username", "alice"]
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    created = _eventml("topics", "create", topic, *options, "--sasl-password-file", str(secret), env=env)
    assert created.returncode == 0 and f"created {topic!r}" in created.stdout, created.stderr
    listed = _eventml("topics", "list", *options, env={**env, "EVENTML_SASL_PASSWORD": PASSWORD})
    assert topic in listed.stdout.split()
    refused = _eventml("topics", "list", *options, "--sasl-password", WRONG, env=env)
    assert refused.returncode == 2 and "shows in `ps`" in refused.stderr and WRONG not in refused.stderr
    wrong = _eventml("topics", "list", *options, env={**env, "EVENTML_SASL_PASSWORD": WRONG})
    assert wrong.returncode == 2 and wrong.stderr.startswith("eventml: error: Kafka at")
    assert "refused the PLAIN login of user 'alice'" in wrong.stderr and WRONG not in wrong.stderr + wrong.stdout
    missing = _eventml("topics", "list", *options, env=env, stdin="")  # not a terminal: no prompt
    assert missing.returncode == 2 and "sasl_password is not set" in missing.stderr
