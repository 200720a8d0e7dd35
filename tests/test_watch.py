"""Integration: watching a real live updater ends with it and returns its summary."""

from __future__ import annotations

import pytest

import eventml as em
from eventml.live_figure import watch

pytestmark = pytest.mark.integration


def test_watch_returns_the_summary_when_the_updater_stops(kafka_bootstrap, topic, tmp_path):
    em.produce(em.synthetic("sea", 300, seed=1), topic, progress=False)
    updater = em.LiveUpdater(topic, f"{topic}.predictions", state_dir=tmp_path / "state", idle_timeout_s=1.0,
                             summary_every=100)
    summary = watch(updater.start(), every_s=0.1)
    stats = updater.join()
    assert not updater.running
    assert summary["events"].tolist() == [100, 200, 300]
    assert summary["model_version"].iloc[-1] == stats.model_version == 300
    assert summary["accuracy"].iloc[-1] == stats.to_dict()["accuracy"]


def test_watch_can_return_while_the_updater_goes_on(kafka_bootstrap, topic, tmp_path):
    job = em.produce_in_background(em.synthetic("sea", 3000, seed=2), topic, rate=1000)
    updater = em.LiveUpdater(topic, f"{topic}.predictions", state_dir=tmp_path / "state", idle_timeout_s=2.0)
    watch(updater.start(), every_s=0.05, until_events=500)
    assert updater.running and updater.stats.events >= 500
    updater.stop()
    stats = updater.join()
    job.join()
    assert stats.events < 3000


def test_watch_rejects_a_non_positive_interval(tmp_path):
    updater = em.LiveUpdater("t", "p", state_dir=tmp_path / "state")
    with pytest.raises(em.ConfigError, match="every_s must be a positive number"):
        watch(updater, every_s=0)
