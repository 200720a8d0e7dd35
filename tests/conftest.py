"""Shared fixtures: one real Kafka broker for the whole session.

If ``EVENTML_BOOTSTRAP_SERVERS`` is set, the tests use that cluster. Otherwise the session
starts eventml's local broker on free ports in a temporary folder and stops it at the end.
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


@pytest.fixture
def topic(request) -> str:
    """A topic name no other test uses."""
    return f"{request.node.name[:40].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"
