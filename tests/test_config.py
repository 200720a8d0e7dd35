"""Client settings: defaults, the environment variable, and unknown keys."""

from __future__ import annotations

import pytest

from eventml.config import DEFAULT_BOOTSTRAP, bootstrap_servers, consumer_config, producer_config
from eventml.errors import ConfigError


def test_the_environment_variable_sets_the_bootstrap_servers(monkeypatch):
    monkeypatch.setenv("EVENTML_BOOTSTRAP_SERVERS", "kafka:29092")
    assert bootstrap_servers() == "kafka:29092"
    assert producer_config()["bootstrap_servers"] == "kafka:29092"
    assert bootstrap_servers("other:1") == "other:1"


def test_without_the_environment_variable_the_default_is_local(monkeypatch):
    monkeypatch.delenv("EVENTML_BOOTSTRAP_SERVERS", raising=False)
    assert bootstrap_servers() == DEFAULT_BOOTSTRAP == "127.0.0.1:9092"


def test_overrides_win_over_eventml_defaults():
    assert producer_config(linger_ms=0)["linger_ms"] == 0
    assert consumer_config(group_id="g")["group_id"] == "g"


def test_an_unknown_setting_is_named_with_the_accepted_ones():
    with pytest.raises(ConfigError) as info:
        producer_config(linger=5)
    message = str(info.value)
    assert "unknown producer setting(s) 'linger'" in message
    assert "linger_ms" in message and "batch_size" in message


def test_security_settings_pass_through():
    cfg = consumer_config(security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
                          sasl_plain_username="u", sasl_plain_password="p")
    assert cfg["security_protocol"] == "SASL_SSL" and cfg["sasl_plain_username"] == "u"
