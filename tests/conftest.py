"""Shared fixtures: one real Kafka broker for the whole session.

If ``EVENTML_BOOTSTRAP_SERVERS`` is set, the tests use that cluster. Otherwise the session
starts eventml's local broker on free ports in a temporary folder and stops it at the end.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from eventml.broker import LocalKafka


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory) -> str:
    """The bootstrap address of a real broker for this test session."""
    existing = os.environ.get("EVENTML_BOOTSTRAP_SERVERS")
    if existing:
        yield existing
        return
    port = free_port()
    kafka = LocalKafka(port=port, controller_port=free_port(), data_dir=tmp_path_factory.mktemp("kafka"))
    with kafka:
        os.environ["EVENTML_BOOTSTRAP_SERVERS"] = kafka.bootstrap_servers
        yield kafka.bootstrap_servers
        del os.environ["EVENTML_BOOTSTRAP_SERVERS"]


@pytest.fixture
def topic(request) -> str:
    """A topic name no other test uses."""
    return f"{request.node.name[:40].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"
