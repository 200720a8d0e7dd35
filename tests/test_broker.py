"""The local broker: start, status, stop, idempotence, restart with data kept, and the error cases."""

from __future__ import annotations

import os
import socket
import stat

import pytest

import eventml as em
from eventml.kafka import LocalKafka, check_java, free_port, resolve_jars
from eventml.errors import BrokerError



@pytest.mark.integration
def test_start_status_stop_and_restart_keep_the_data(tmp_path):
    kafka = LocalKafka(port=free_port(), controller_port=free_port(), data_dir=tmp_path / "kafka")
    assert kafka.status().running is False
    try:
        status = kafka.start()
        assert status.running and status.pid
        assert kafka.start().pid == status.pid  # a second start leaves the running broker alone
        report = em.produce(em.synthetic("sea", 100, seed=1), "kept", bootstrap_servers=kafka.bootstrap_servers,
                            progress=False)
        assert report.delivered == 100
        assert kafka.stop() is True
        assert kafka.status().running is False
        assert kafka.stop() is False
        kafka.start()
        assert len(em.read_events("kept", bootstrap_servers=kafka.bootstrap_servers)) == 100
    finally:
        kafka.stop()


@pytest.mark.integration
def test_a_taken_port_is_a_one_sentence_error(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port {port} on 127.0.0.1 is already taken"):
            LocalKafka(port=port, data_dir=tmp_path).start()


def _fake_java(folder, version_line: str):
    """A `java` that only answers -version, to check the version test (it never runs Kafka)."""
    script = folder / "java"
    script.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_java_older_than_17_is_refused_with_what_to_do(tmp_path, monkeypatch):
    _fake_java(tmp_path, 'openjdk version "11.0.21" 2023-10-17')
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError, match="needs Java 17 or newer but `java` is Java 11"):
        check_java()


def test_java_8_version_string_is_read_as_8(tmp_path, monkeypatch):
    _fake_java(tmp_path, 'java version "1.8.0_402"')
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError, match="is Java 8"):
        check_java()


def test_missing_java_says_to_install_a_jdk(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError, match="Java was not found on PATH; install a JDK 17"):
        check_java()


def test_missing_maven_says_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EVENTML_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError, match=r"Maven \(mvn\) was not found on PATH"):
        resolve_jars()


def test_the_installed_java_is_accepted():
    assert check_java() >= 17


def test_cluster_ids_never_start_with_a_dash(monkeypatch):
    import uuid as uuid_module

    from eventml.kafka import node

    dash_first = uuid_module.UUID(bytes=b"\xf8" + bytes(15))  # base64 "-A...": read as an option by Kafka
    fresh = iter([dash_first, uuid_module.UUID(int=7)])
    monkeypatch.setattr(node.uuid, "uuid4", lambda: next(fresh))
    assert node.base64.urlsafe_b64encode(dash_first.bytes).decode().startswith("-")
    cluster_id = node.new_cluster_id()
    assert not cluster_id.startswith("-") and len(cluster_id) == 22
