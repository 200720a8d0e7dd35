"""Connection settings: one scheme (keywords, EVENTML_* variables, defaults), both dialects,
validation with the accepted names listed, and passwords never shown."""

from __future__ import annotations

import logging
import pickle

import pytest

import eventml as em
from eventml.errors import ConfigError
from eventml.kafka import logs, rdkafka
from eventml.kafka.clients import consumer_config, producer_config
from eventml.kafka.rdkafka import rdkafka_config
from eventml.kafka.settings import DEFAULT_BOOTSTRAP, ENV_NAMES, NAMES, KafkaSettings, bootstrap_servers, environment

SECRET = "pa55-w0rd-7e3f"

FULL = dict(bootstrap_servers="b1:9093,b2:9093", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
            sasl_username="alice", sasl_password=SECRET, ssl_cafile="/ca.pem", ssl_certfile="/client.pem",
            ssl_keyfile="/client.key", ssl_password=SECRET + "-key", ssl_check_hostname=False)


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV_NAMES.values():
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_environment_variable_sets_the_bootstrap_servers(clean_env):
    clean_env.setenv("EVENTML_BOOTSTRAP_SERVERS", "kafka:29092")
    assert bootstrap_servers() == "kafka:29092"
    assert KafkaSettings().bootstrap_servers == "kafka:29092"
    assert producer_config(KafkaSettings())["bootstrap_servers"] == "kafka:29092"
    assert bootstrap_servers("other:1") == "other:1"


def test_without_the_environment_variable_the_default_is_local(clean_env):
    assert bootstrap_servers() == DEFAULT_BOOTSTRAP == "127.0.0.1:9092"
    settings = KafkaSettings()
    assert (settings.bootstrap_servers, settings.security_protocol, settings.sasl_mechanism) == \
        ("127.0.0.1:9092", "PLAINTEXT", "PLAIN")


def test_every_setting_has_one_environment_variable_and_keywords_win_over_it(clean_env):
    assert ENV_NAMES == {name: "EVENTML_" + name.upper() for name in NAMES}
    env = {ENV_NAMES[name]: str(value) for name, value in FULL.items()}
    from_env = KafkaSettings(environ=env)
    assert from_env == KafkaSettings(**FULL, environ={})
    assert KafkaSettings(sasl_username="bob", environ=env).sasl_username == "bob"
    assert KafkaSettings(environ={**env, "EVENTML_SASL_USERNAME": ""}, sasl_username="carol").sasl_username == "carol"
    clean_env.setenv("EVENTML_SECURITY_PROTOCOL", "sasl_plaintext")
    clean_env.setenv("EVENTML_SASL_USERNAME", "dave")
    clean_env.setenv("EVENTML_SASL_PASSWORD", SECRET)
    assert KafkaSettings().security_protocol == "SASL_PLAINTEXT"  # the process environment by default


def test_a_settings_object_and_keywords_resolve_together():
    base = KafkaSettings(**FULL, environ={})
    assert KafkaSettings.resolve(base) is base
    moved = KafkaSettings.resolve(base, bootstrap_servers="b3:9093", sasl_username=None)
    assert moved.bootstrap_servers == "b3:9093" and moved.sasl_username == "alice" and moved.sasl_password == SECRET
    with pytest.raises(ConfigError, match="kafka must be a KafkaSettings"):
        KafkaSettings.resolve("b1:9092")


def test_both_dialects_are_rendered():
    settings = KafkaSettings(**FULL, environ={})
    assert settings.for_kafka_python() == {
        "bootstrap_servers": "b1:9093,b2:9093", "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice", "sasl_plain_password": SECRET, "ssl_check_hostname": False,
        "ssl_cafile": "/ca.pem", "ssl_certfile": "/client.pem", "ssl_keyfile": "/client.key",
        "ssl_password": SECRET + "-key"}
    assert settings.for_librdkafka() == {
        "bootstrap.servers": "b1:9093,b2:9093", "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice", "sasl.password": SECRET, "ssl.ca.location": "/ca.pem",
        "ssl.certificate.location": "/client.pem", "ssl.key.location": "/client.key",
        "ssl.key.password": SECRET + "-key", "ssl.endpoint.identification.algorithm": "none"}
    tls_only = KafkaSettings("b:9093", security_protocol="SSL", environ={})
    assert tls_only.for_librdkafka()["ssl.ca.location"] == "probe"  # the system's CAs, as kafka-python
    assert tls_only.for_librdkafka()["ssl.endpoint.identification.algorithm"] == "https"
    assert "sasl.username" not in tls_only.for_librdkafka()


def test_settings_a_protocol_does_not_use_are_left_out():
    env = {"EVENTML_SASL_USERNAME": "alice", "EVENTML_SASL_PASSWORD": SECRET, "EVENTML_SSL_CAFILE": "/ca.pem"}
    plain = KafkaSettings("b:9092", security_protocol="PLAINTEXT", environ=env)
    assert plain.for_kafka_python() == {"bootstrap_servers": "b:9092", "security_protocol": "PLAINTEXT"}
    assert em.LocalKafka(port=19097).settings.for_librdkafka() == {
        "bootstrap.servers": "127.0.0.1:19097", "security.protocol": "PLAINTEXT"}


def test_an_unknown_setting_is_named_with_the_accepted_ones():
    with pytest.raises(ConfigError) as info:
        producer_config(KafkaSettings(environ={}), linger=5)
    message = str(info.value)
    assert "unknown producer setting(s) 'linger'" in message
    assert "linger_ms" in message and "batch_size" in message and "sasl_username" in message
    with pytest.raises(ConfigError) as info:
        KafkaSettings(sasl_user="alice")
    assert "'sasl_user'" in str(info.value) and all(name in str(info.value) for name in NAMES)


def test_overrides_win_over_eventml_defaults():
    assert producer_config(KafkaSettings(environ={}), linger_ms=0)["linger_ms"] == 0
    assert consumer_config(KafkaSettings(environ={}), group_id="g")["group_id"] == "g"


def test_producers_default_to_acks_all_with_idempotence_and_drop_idempotence_for_an_explicit_acks_1():
    plain = KafkaSettings("b:9092", environ={})
    kafka_python = producer_config(plain)
    assert (kafka_python["acks"], kafka_python["enable_idempotence"]) == ("all", True)
    assert "retries" not in kafka_python  # kafka-python's: retry until delivery_timeout_ms
    assert producer_config(plain, acks=1)["enable_idempotence"] is False
    assert producer_config(plain, retries=0)["enable_idempotence"] is False
    assert producer_config(plain, acks=1, enable_idempotence=True)["enable_idempotence"] is True  # refused later
    librdkafka = rdkafka.producer_config(plain)
    assert (librdkafka["acks"], librdkafka["enable.idempotence"]) == ("all", True)
    assert rdkafka.producer_config(plain, {"acks": 1})["enable.idempotence"] is False
    assert rdkafka.producer_config(plain, {"max.in.flight": 10})["enable.idempotence"] is False
    assert rdkafka.producer_config(plain, {"acks": "all", "transactional.id": "t"})["enable.idempotence"] is True
    # librdkafka itself takes each (it connects lazily: no broker needed) and refuses the contradiction
    for config in ({}, {"acks": 1}, {"acks": 0}, {"max.in.flight": 10}):
        rdkafka.Producer(rdkafka.producer_config(plain, config))
    with pytest.raises(rdkafka.KafkaException, match="`acks` must be set to `all` when `enable.idempotence` is true"):
        rdkafka.Producer(rdkafka.producer_config(plain, {"acks": 1, "enable.idempotence": True}))


def test_a_connection_setting_under_a_clients_own_name_points_to_eventmls():
    with pytest.raises(ConfigError, match="sasl_plain_password is a connection setting: give it as sasl_password"):
        consumer_config(KafkaSettings(environ={}), sasl_plain_password=SECRET)
    with pytest.raises(ConfigError, match="'ssl.ca.location' is a connection setting"):
        rdkafka_config(KafkaSettings(environ={}), {"ssl.ca.location": "/ca.pem"})
    assert consumer_config(KafkaSettings(environ={}), ssl_crlfile="/crl.pem")["ssl_crlfile"] == "/crl.pem"


def test_every_entry_point_rejects_an_unknown_connection_keyword():
    with pytest.raises(ConfigError, match="'sasl_user'"):
        em.LiveUpdater("t", "t.pred", state_dir="unused", sasl_user="alice")
    with pytest.raises(ConfigError, match="accepted settings"):
        em.produce([], "t", sasl_user="alice", bootstrap_servers="127.0.0.1:1")


@pytest.mark.parametrize("field, value", [("security_protocol", "SASL_SLL"), ("sasl_mechanism", "GSSAPI")])
def test_a_protocol_or_mechanism_not_accepted_lists_the_accepted_ones(field, value):
    with pytest.raises(ConfigError) as info:
        KafkaSettings(environ={ENV_NAMES[field]: value, "EVENTML_SASL_USERNAME": "a", "EVENTML_SASL_PASSWORD": SECRET})
    message = str(info.value)
    assert value in message and f"(from {ENV_NAMES[field]})" in message
    accepted = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL") if field == "security_protocol" else \
        ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    assert all(name in message for name in accepted)
    assert SECRET not in message
    assert KafkaSettings(security_protocol="ssl", environ={}).security_protocol == "SSL"  # any case


def test_sasl_without_credentials_says_which_is_missing():
    with pytest.raises(ConfigError) as info:
        KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_username="alice", environ={})
    assert "sasl_password is not set" in str(info.value) and "EVENTML_SASL_PASSWORD" in str(info.value)
    with pytest.raises(ConfigError, match="sasl_username and sasl_password are not set"):
        KafkaSettings(security_protocol="SASL_SSL", environ={})


def test_credentials_or_certificates_without_a_protocol_are_an_error_not_plaintext():
    with pytest.raises(ConfigError, match="security_protocol is not, so no credentials would be sent"):
        KafkaSettings(sasl_username="alice", sasl_password=SECRET, environ={})
    with pytest.raises(ConfigError, match=r"ssl_cafile \(from EVENTML_SSL_CAFILE\) is set but security_protocol"):
        KafkaSettings(environ={"EVENTML_SSL_CAFILE": "/ca.pem"})
    with pytest.raises(ConfigError, match="ssl_keyfile is set without ssl_certfile"):
        KafkaSettings(security_protocol="SSL", ssl_keyfile="/k.pem", environ={})


def test_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match="not host:port"):
        KafkaSettings("broker:http", environ={})
    with pytest.raises(ConfigError, match="must be true or false"):
        KafkaSettings(environ={"EVENTML_SSL_CHECK_HOSTNAME": "maybe"})
    assert KafkaSettings(environ={"EVENTML_SSL_CHECK_HOSTNAME": "False"}).ssl_check_hostname is False
    with pytest.raises(ConfigError, match="EVENTML_SASL_PASWORD"):
        KafkaSettings(environ={"EVENTML_SASL_PASWORD": SECRET})
    assert KafkaSettings(["a:1", "b:2"], environ={}).bootstrap_servers == "a:1,b:2"


def test_passwords_never_show_in_repr_str_errors_or_pickles():
    settings = KafkaSettings(**FULL, environ={})
    for text in (repr(settings), str(settings), repr([settings]), f"{settings}"):
        assert SECRET not in text
    assert "sasl_password='***'" in repr(settings) and "ssl_password='***'" in repr(settings)
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(settings)
    errors = []
    for bad in ({"sasl_mechanism": "MD5"}, {"security_protocol": "TLS"}, {"bootstrap_servers": "x:y"},
                {"ssl_check_hostname": "perhaps"}, {"sasl_username": None, "environ": {}}):
        with pytest.raises(ConfigError) as info:
            KafkaSettings(**{**FULL, "environ": {}, **bad})
        errors.append(str(info.value))
    assert errors and not any(SECRET in message for message in errors)


def test_kafka_client_log_lines_never_hold_a_password(caplog):
    KafkaSettings(**FULL, environ={})  # registers its passwords
    logs.protect_tree("kafka")
    with caplog.at_level(logging.DEBUG, logger="kafka"):
        logging.getLogger("kafka.net.connection").debug("Request 3: auth_bytes=%r", f"alice\0alice\0{SECRET}".encode())
        logging.getLogger("kafka.admin.client").debug("configuration: %s", {"sasl_plain_password": SECRET})
        try:
            raise RuntimeError(f"failed with {SECRET}")
        except RuntimeError:
            logging.getLogger("kafka.net.connection").exception("oops")
    assert len(caplog.records) == 3
    assert SECRET not in caplog.text and "***" in caplog.text


def test_the_environment_block_exports_the_settings_and_restores_the_old_values(clean_env):
    clean_env.setenv("EVENTML_BOOTSTRAP_SERVERS", "old:9092")
    settings = KafkaSettings("new:9093", security_protocol="SASL_SSL", sasl_username="alice", sasl_password=SECRET,
                             environ={})
    import os

    with environment(settings):
        assert KafkaSettings() == settings
        assert os.environ["EVENTML_SASL_PASSWORD"] == SECRET
    assert os.environ["EVENTML_BOOTSTRAP_SERVERS"] == "old:9092" and "EVENTML_SASL_PASSWORD" not in os.environ


def test_grid_kernels_get_the_connection_settings_as_their_environment(tmp_path, clean_env):
    import nbformat

    from eventml.grid import run_grid

    params = nbformat.v4.new_code_cell('OUTPUT_DIR = "."\nBOOTSTRAP_SERVERS = ""\nN = 1')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import eventml as em\nfrom eventml.results import save_figures\ns = em.KafkaSettings()\n"
        "save_figures({'servers': s.bootstrap_servers, 'protocol': s.security_protocol, 'user': s.sasl_username,\n"
        "              'password_given': s.sasl_password == " + repr(SECRET) + ", 'parameter': BOOTSTRAP_SERVERS},\n"
        "             OUTPUT_DIR, '01_env')")
    nb = nbformat.v4.new_notebook(cells=[params, body])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "01_env.ipynb")
    settings = KafkaSettings("b:9093", security_protocol="SASL_SSL", sasl_username="alice", sasl_password=SECRET,
                             environ={})
    df = run_grid(tmp_path / "01_env.ipynb", {"N": [1]}, tmp_path / "g", kafka=settings, progress=False)
    row = df.iloc[0]
    assert (row["servers"], row["protocol"], row["user"], bool(row["password_given"]), row["parameter"]) == \
        ("b:9093", "SASL_SSL", "alice", True, "b:9093")
    import os

    assert "EVENTML_SASL_PASSWORD" not in os.environ  # restored after the runs


def test_librdkafka_retries_and_rebalance_refusals_are_debug_lines_and_its_other_errors_stay_errors(caplog):
    logger = logging.getLogger("eventml.test.librdkafka")
    logs.quiet_retries(logger)
    refused = ("Current transaction failed in state InTransaction: Failed to commit offsets to transaction on broker "
               "b/1: t[3](Broker: Specified group generation id is not valid) (after 4ms) (ILLEGAL_GENERATION)")
    with caplog.at_level(logging.INFO, logger="eventml.test.librdkafka"):
        logger.log(logging.WARNING, "%s [%s] %s", "GETPID", "rdkafka#producer-1", "Coordinator load in progress: retrying")
        logger.log(logging.ERROR, "%s [%s] %s", "TXNERR", "rdkafka#producer-1", refused)
        logger.log(logging.ERROR, "%s [%s] %s", "TXNERR", "rdkafka#producer-1", "2 message(s) timed out (_TIMED_OUT)")
    assert [(r.levelname, r.getMessage()[:6]) for r in caplog.records] == [("ERROR", "TXNERR")]
    assert "timed out" in caplog.records[0].getMessage()
