"""A secured local broker: `eventml kafka start --secure` runs Kafka with one client listener that
requires SASL/SCRAM-SHA-512 over TLS (certificates made with the JDK's keytool, random passwords in
files). Against it, with the settings as keywords, as EVENTML_* variables or as command options:
produce, read, dead letters, topics, the command, a grid of notebooks, and the live updater's exactly-once through
kill -9 and restart. A wrong password and an untrusted certificate are each one sentence that
says which, within seconds, and no password shows in an output, an error or a log line.

One broker (started and stopped with the command) serves the whole file."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

import eventml as em
from eventml.errors import BrokerError, KafkaAuthError
from eventml.kafka import LocalKafka, free_port, secure
from eventml.kafka.connection import check_connection
from eventml.kafka.settings import ENV_NAMES, KafkaSettings
from eventml.live import KILL_ENV, load_model

from live_helpers import live_process, offline_predictions, probe, published, resumable

pytestmark = pytest.mark.integration

WRONG = "not-the-password-7a3e"


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without eventml's connection variables (and the kill hook)."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES.values() and k != KILL_ENV}
    return {**env, **extra}


def _eventml(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eventml.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env or _clean_env(), stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """A secured broker on free ports, started with `eventml kafka start --secure` and stopped with
    `eventml kafka stop` at the end of the module."""
    data = tmp_path_factory.mktemp("secure-kafka") / "kafka"
    port, controller = free_port(), free_port()
    where = ["--port", str(port), "--controller-port", str(controller), "--data-dir", str(data)]
    kafka = LocalKafka(port=port, controller_port=controller, data_dir=data)
    try:
        proc = _eventml("kafka", "start", "--secure", *where)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        files = kafka.secure_files
        yield SimpleNamespace(kafka=kafka, files=files, where=where, start_output=proc.stdout,
                              password=files.password(secure.USERNAME),
                              passwords=[files.password(user) for user in (secure.USERNAME, secure.ADMIN, "keystore")])
    finally:
        stopped = _eventml("kafka", "stop", *where)
        kafka.stop()  # in case the command could not
        assert stopped.stdout.strip() == "Kafka stopped", stopped.stdout + stopped.stderr


def keywords(secured) -> dict[str, str]:
    """The secured broker's connection settings as Python keywords."""
    return {"bootstrap_servers": secured.kafka.bootstrap_servers, "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "eventml", "sasl_password": secured.password,
            "ssl_cafile": str(secured.files.ca_pem)}


def options(secured, password_file: bool = True) -> list[str]:
    """The same settings as `eventml` options, the password from its file (else from the environment)."""
    password = ["--sasl-password-file", str(secured.files.password_file(secure.USERNAME))] if password_file else []
    return ["--bootstrap-servers", secured.kafka.bootstrap_servers, "--security-protocol", "SASL_SSL",
            "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "eventml", *password,
            "--ssl-cafile", str(secured.files.ca_pem)]


def _with_a_bad_record(topic: str, n: int, seed: int, **connection) -> list[em.Event]:
    events = list(em.synthetic("sea", n, seed=seed))
    with em.producer.EventProducer(topic, **connection) as producer:
        for i, event in enumerate(events):
            if i == n // 2:
                producer.send_raw(b"not json")
            producer.send(event)
    assert producer.report.delivered == n + 1
    return events


# ---------------------------------------------------------------------- the broker


def test_start_secure_keeps_its_secrets_private_and_prints_how_to_connect(secured):
    out, files = secured.start_output, secured.files
    assert "over SASL_SSL (SCRAM-SHA-512)" in out.splitlines()[0]
    assert f"export EVENTML_SASL_PASSWORD=\"$(cat {files.password_file('eventml')})\"" in out
    assert f"export EVENTML_SSL_CAFILE={files.ca_pem}" in out
    assert stat.S_IMODE(files.folder.stat().st_mode) == 0o700
    for path in (*(files.password_file(user) for user in ("eventml", "admin", "keystore")), files.keystore,
                 secured.kafka.data_dir / "server.properties"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert files.ca_pem.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert not (files.folder / "ca.p12").exists()  # the CA's key signed one certificate, then went
    status = _eventml("kafka", "status", *secured.where)
    assert status.returncode == 0 and "export EVENTML_SECURITY_PROTOCOL=SASL_SSL" in status.stdout
    logs = [secured.kafka.log_file.read_text(), (secured.kafka.data_dir / "stdout.log").read_text()]
    for password in secured.passwords:
        assert password not in out + status.stdout + status.stderr + repr(secured.kafka.settings)
        assert not any(password in log for log in logs)


def test_the_certificate_names_127_0_0_1_and_localhost(secured):
    settings = secured.kafka.settings
    check_connection(settings)
    check_connection(settings.replace(bootstrap_servers=f"localhost:{secured.kafka.port}"))


def test_a_data_directory_keeps_its_kind(secured, tmp_path):
    with pytest.raises(BrokerError, match="holds a secured broker"):
        LocalKafka(port=free_port(), data_dir=secured.kafka.data_dir, secure=False).start()
    plain = tmp_path / "plain"
    (plain / "logs").mkdir(parents=True)
    (plain / "logs" / "meta.properties").write_text("formatted\n")
    with pytest.raises(BrokerError, match="holds a PLAINTEXT broker"):
        LocalKafka(port=free_port(), data_dir=plain, secure=True).start()


# ---------------------------------------------------------------------- the helpers, the live updater, the command


def test_keywords_reach_produce_read_dead_letters_and_topics(secured, topic):
    connection = keywords(secured)
    assert em.create_topic(topic, partitions=2, **connection) is True
    assert topic in em.list_topics(**connection)
    events = _with_a_bad_record(topic, 40, 1, **connection)
    assert sorted(e.id for e in em.read_events(topic, **connection)) == sorted(e.id for e in events)
    assert em.describe_topic(topic, **connection)["records"].sum() == 41
    dead = em.read_dead_letters(topic, idle_timeout_s=5, **connection)  # written with the same settings
    assert list(dead["reason"]) == ["not_json"]


def test_the_environment_alone_connects(secured, topic, monkeypatch):
    for name, value in KafkaSettings(**keywords(secured), environ={}).to_env().items():
        monkeypatch.setenv(name, value)
    assert em.create_topic(topic) is True
    events = _with_a_bad_record(topic, 30, 2)
    assert [e.id for e in em.read_events(topic)] == [e.id for e in events]
    assert em.describe_topic(topic)["records"].sum() == 31
    assert list(em.read_dead_letters(topic, idle_timeout_s=5)["reason"]) == ["not_json"]


def test_the_command_connects_with_the_exports_it_printed(secured, topic):
    exports = "\n".join(line for line in secured.start_output.splitlines() if line.startswith("export "))
    eventml = f"{sys.executable} -m eventml.cli"
    script = (f"{exports}\n{eventml} produce --source sea --events 50 --topic {topic} --seed 3 --quiet "
              f"&& {eventml} consume --topic {topic} --from-beginning --idle-timeout 2 "
              f"&& {eventml} topics describe {topic}")
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, env=_clean_env())
    assert proc.returncode == 0, proc.stderr
    assert "produced 50 of 50 events" in proc.stdout and "read 50 events" in proc.stderr
    assert proc.stdout.count('"id":"e-') == 50 and proc.stdout.splitlines()[-1].split() == ["0", "0", "50", "50"]
    listed = _eventml("topics", "list", *options(secured))  # the options instead, the password from its file
    assert listed.returncode == 0 and topic in listed.stdout.split()
    for password in secured.passwords:
        assert password not in proc.stdout + proc.stderr + listed.stdout + listed.stderr








def _live_process(secured, events_topic, predictions_topic, state_dir, n, kill_at=None):
    return live_process(None, events_topic, predictions_topic, *resumable(state_dir, n), *options(secured),
                        kill_at=kill_at, env=_clean_env())


def test_the_live_updater_is_exactly_once_through_kill_9_and_restart(secured, topic, tmp_path):
    settings = secured.kafka.settings
    n = 1000
    events = list(em.synthetic("sea", n, seed=11))
    assert em.produce(events, topic, kafka=settings, progress=False).delivered == n
    em.LiveUpdater(topic, f"{topic}.clean", state_dir=tmp_path / "clean", kafka=settings, max_events=n,
                   records_per_transaction=100).run()

    state, predictions = tmp_path / "crash", f"{topic}.crash"
    # 1: dies between writing its 3rd snapshot and committing it; 2: right after its 2nd commit
    for kill_at in ("before_commit:3", "after_commit:2"):
        proc = _live_process(secured, topic, predictions, state, n, kill_at)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, err
    # 3: runs to the end
    proc = _live_process(secured, topic, predictions, state, n)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"live: {n} events predicted" in out and "2 restarts" in out

    got, count = published(predictions, kafka=settings)
    expected, _ = published(f"{topic}.clean", kafka=settings)
    assert count == n and len(got) == n
    assert got == expected == offline_predictions(events)
    assert probe(load_model(state)) == probe(load_model(tmp_path / "clean"))


# ---------------------------------------------------------------------- refused: one sentence, within seconds


def _refused(call) -> KafkaAuthError:
    started = time.monotonic()
    with pytest.raises(KafkaAuthError) as info:
        call()
    assert time.monotonic() - started < 5
    return info.value


def test_a_wrong_password_says_the_login_was_refused_and_never_shows_it(secured, topic, tmp_path, caplog):
    connection = {**keywords(secured), "sasl_password": WRONG}
    with caplog.at_level(logging.DEBUG):
        read = _refused(lambda: em.read_events(topic, **connection))
        live = _refused(lambda: em.LiveUpdater(topic, f"{topic}.pred", state_dir=tmp_path / "state",
                                               idle_timeout_s=1, **connection).run())
    for error in (read, live):
        assert error.reason == "credentials"
        assert str(error).startswith(f"Kafka at {secured.kafka.bootstrap_servers} refused the SCRAM-SHA-512 "
                                     "login of user 'eventml'")
        assert "sasl_password" in str(error) and WRONG not in str(error) + repr(error)
    assert WRONG not in caplog.text
    command = _eventml("topics", "list", *options(secured, password_file=False),
                       env=_clean_env(EVENTML_SASL_PASSWORD=WRONG))
    assert command.returncode == 2 and "refused the SCRAM-SHA-512 login of user 'eventml'" in command.stderr
    assert WRONG not in command.stdout + command.stderr


def test_an_untrusted_certificate_says_it_is_not_trusted(secured, topic, tmp_path):
    other_ca = tmp_path / "other-ca"
    other_ca.mkdir()
    secure.make_ca(other_ca, "other-ca-store-password", name="another CA")
    for cafile, trusted_by in ((None, "the system's CA certificates (ssl_cafile is not set)"),
                               (str(other_ca / "ca.pem"), f"the CA certificates in ssl_cafile '{other_ca / 'ca.pem'}'")):
        connection = {**keywords(secured), "ssl_cafile": cafile}
        read = _refused(lambda: em.read_events(topic, **connection))
        live = _refused(lambda: em.LiveUpdater(topic, f"{topic}.pred", state_dir=tmp_path / "state",
                                               idle_timeout_s=1, **connection).run())
        for error in (read, live):
            assert error.reason == "untrusted_certificate"
            assert str(error).startswith(f"the TLS certificate of Kafka at {secured.kafka.bootstrap_servers} is "
                                         f"not trusted by {trusted_by}"), str(error)
            assert "set ssl_cafile (EVENTML_SSL_CAFILE)" in str(error)


def test_refusals_past_the_connection_check_are_the_same_sentences(secured, topic, tmp_path):
    """As if the password or the certificate changed within the minute a passed check is remembered:
    the clients' own failures become the same sentences, not timeouts."""
    from eventml.kafka.connection import _verified

    settings = secured.kafka.settings
    for bad, reason in ((settings.replace(sasl_password=WRONG), "credentials"),
                        (settings.replace(ssl_cafile=None), "untrusted_certificate")):
        _verified[bad] = time.monotonic()
        listed = _refused(lambda: em.list_topics(kafka=bad, bootstrap_timeout_ms=2000))
        _verified[bad] = time.monotonic()
        live = _refused(lambda: em.LiveUpdater(topic, f"{topic}.pred", state_dir=tmp_path / "state", kafka=bad,
                                               idle_timeout_s=1).run())
        for error in (listed, live):
            assert error.reason == reason and WRONG not in str(error)
            assert ("refused the SCRAM-SHA-512 login" if reason == "credentials" else "ssl_cafile") in str(error)



def test_a_grid_of_notebooks_runs_against_the_secured_broker(secured, tmp_path):
    # the kernels get the settings as EVENTML_* variables; notebook 01 produces, reads back and dead-letters
    from pathlib import Path

    notebook = Path(__file__).parent.parent / "notebooks" / "01_generate_events.ipynb"
    topic = f"secure-nb01-{os.getpid()}-{time.monotonic_ns()}"
    df = em.grid.run_grid(notebook, {"N_EVENTS": [200, 300]}, tmp_path, {"TOPIC": topic, "DRIFT_AT": 100},
                     kafka=KafkaSettings(**keywords(secured), environ={}), progress=False)
    assert df["error"].isna().all(), df["error"].tolist()
    assert df["events_delivered"].tolist() == df["events_read_back"].tolist() == [200, 300]  # a new topic each run
    assert df["dead_lettered"].tolist() == [1, 1]
    assert em.describe_topic(topic, **keywords(secured))["records"].sum() == 300 + 1
