"""Shared fixtures: one real Kafka broker for the whole session.

If ``EVENTML_BOOTSTRAP_SERVERS`` is set, the tests use that cluster. Otherwise the session
starts eventml's local broker on free ports in a temporary folder and stops it at the end.
Tests that need several brokers ask for ``kafka_cluster`` (a local three-node cluster).

``./run.sh test`` runs the tests in two pytest-xdist workers (``-n 2 --dist loadgroup``): the
controller starts the broker once and both workers use it; the tests of a file stay in one worker
(a module's own broker starts once), and so do all the tests of the three-node cluster.
"""

from __future__ import annotations

import contextlib
import os
import uuid

import pytest

from eventml.kafka import ENV_BOOTSTRAP, kafka_for


def pytest_configure(config):
    """Under pytest-xdist, the controller starts the session's broker for every worker (they inherit
    ``EVENTML_BOOTSTRAP_SERVERS``); without workers, :func:`kafka_bootstrap` starts it when first asked."""
    workers = config.getoption("numprocesses", default=None)
    if hasattr(config, "workerinput") or not workers or os.environ.get(ENV_BOOTSTRAP):
        return
    broker = contextlib.ExitStack()
    os.environ[ENV_BOOTSTRAP] = broker.enter_context(kafka_for(None))
    config.eventml_broker = broker


def pytest_unconfigure(config):
    broker = getattr(config, "eventml_broker", None)
    if broker is not None:
        del os.environ[ENV_BOOTSTRAP]
        broker.close()


def pytest_collection_modifyitems(config, items):
    """Groups for ``--dist loadgroup``: a file's tests run in one worker, the three-node cluster's in one."""
    for item in items:
        cluster = "kafka_cluster" in getattr(item, "fixturenames", ())
        item.add_marker(pytest.mark.xdist_group("kafka_cluster" if cluster else item.nodeid.split("::")[0]))


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
