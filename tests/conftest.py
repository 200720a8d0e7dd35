"""Shared fixtures: one real Kafka broker for the whole session.

If ``EVENTML_BOOTSTRAP_SERVERS`` is set, the tests use that cluster. Otherwise the session
starts eventml's local broker on free ports in a temporary folder and stops it at the end.
Tests that need several brokers ask for ``kafka_cluster`` (a local three-node cluster).
"""

from __future__ import annotations

import os
import uuid

import pytest

from eventml.kafka import ENV_BOOTSTRAP, kafka_for


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The bootstrap address of a real broker for this test session."""
    existing = os.environ.get(ENV_BOOTSTRAP)
    with kafka_for(existing) as servers:
        os.environ[ENV_BOOTSTRAP] = servers
        yield servers
        if not existing:
            del os.environ[ENV_BOOTSTRAP]


@pytest.fixture(scope="session")
def kafka_cluster():
    """A three-node local Kafka cluster (:class:`eventml.kafka.LocalCluster`) on free ports in a
    temporary folder, started by the first test that asks for it and stopped at the end of the session.

    Connect with ``kafka=kafka_cluster.settings``. A test that stops or kills a node starts it
    again before it ends (``kafka_cluster.start()`` starts every node that is down).
    """
    from eventml.kafka import LocalCluster

    with LocalCluster(brokers=3, port=0) as cluster:
        yield cluster


@pytest.fixture
def topic(request) -> str:
    """A topic name no other test uses."""
    return f"{request.node.name[:40].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"
