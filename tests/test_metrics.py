"""Prometheus metrics of the live updater and the service, scraped over HTTP by a real client and parsed with
prometheus-client's own parser: every counter equals the updater's LiveStats (one updater, a group of two, where
a moved partition's series are gone from its old owner) and the service's own counts, and a real Prometheus
server reads the accuracy the updater reports."""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

import eventml as em
from eventml import read_dead_letters
from eventml.kafka import free_port
from eventml.live import LiveUpdater
from eventml.live.group import GroupUpdater

from live_helpers import live_process, produce_events

KEY = "k" * 32


def scrape(url):
    """Every sample at ``url``: a list of (name, labels, value), read with urllib and prometheus-client's parser."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        kind = str(answer.headers.get("Content-Type"))
        assert kind.startswith("text/plain"), (url, answer.status, dict(answer.headers), answer.read()[:300])
        text = answer.read().decode()
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def total(samples, name, **labels):
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(value for n, have, value in samples if n == name and labels.items() <= have.items())


def by_label(samples, name, label):
    """``{label value: value}`` of the samples called ``name``."""
    return {have[label]: value for n, have, value in samples if n == name}


def assert_counters_equal_stats(samples, stats, model="river_logreg"):
    """Every counter and gauge the scrape has equals the figure the updater reports."""
    assert total(samples, "eventml_live_events_total") == stats.events
    assert total(samples, "eventml_live_predictions_total", model=model) == stats.events
    assert total(samples, "eventml_live_learned_total", model=model) == stats.labelled
    assert total(samples, "eventml_live_model_version", model=model) == stats.model_version
    for outcome in ("late", "expired", "unknown_id", "duplicate"):
        assert total(samples, "eventml_live_labels_total", outcome=outcome) == getattr(stats, outcome)
    assert total(samples, "eventml_live_dead_letters_total") == stats.dead_letters
    assert total(samples, "eventml_live_model_errors_total", model=model) == stats.model_errors
    assert total(samples, "eventml_live_transactions_total") == stats.transactions
    assert total(samples, "eventml_live_restarts_total") == stats.restarts
    assert total(samples, "eventml_live_pending_labels") == stats.pending
    assert total(samples, "eventml_live_running") == 0


# ----------------------------------------------------------------------------- no broker


def test_a_taken_metrics_port_is_a_config_error_naming_it(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(em.ConfigError, match=f"metrics_port {port}: cannot listen on 127.0.0.1:{port}"):
            LiveUpdater("e", "p", state_dir=tmp_path, metrics_port=port)


@pytest.mark.parametrize("port", [-1, 70000, "9108"])
def test_a_metrics_port_that_is_no_port_number_is_refused(tmp_path, port):
    with pytest.raises(em.ConfigError, match="metrics_port must be an integer from 0 to 65535"):
        LiveUpdater("e", "p", state_dir=tmp_path, metrics_port=port)


def test_an_updater_serves_metrics_before_its_run_and_frees_the_port_when_closed(tmp_path):
    updater = LiveUpdater("e", "p", state_dir=tmp_path, metrics_port=0)
    url = updater.metrics_url
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
    samples = scrape(url)
    assert by_label(samples, "eventml_live_updater_info", "updater") == {updater.name: 1.0}
    assert total(samples, "eventml_live_running") == 0 and total(samples, "eventml_live_events_total") == 0
    updater.close_metrics()
    assert updater.metrics_url is None
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=5)


# ----------------------------------------------------------------------------- one updater


def test_every_counter_of_one_updater_equals_its_stats_scraped_during_and_after_the_run(kafka_bootstrap, topic,
                                                                                      tmp_path):
    good = list(em.synthetic("sea", 1200, seed=21))
    bad_events = [b"not json", b'{"features": {"x": 1}}', b'{"id": "b1", "features": {"x": [1, 2]}}']
    bad_labels = [b"nope", b'{"id": "e-1"}']
    labels_topic = f"{topic}.labels"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    base = int(time.time() * 1000) - 60_000
    for i, event in enumerate(good):
        later = i % 2 == 1  # odd events get their label later, on the labels topic
        value = em.events.encode_event(em.Event(event.id, event.features, None if later else event.label, event.ts))
        producer.send(topic, value=value, key=event.id.encode(), timestamp_ms=base + i)
        if i % 400 == 7:
            producer.send(topic, value=bad_events[i // 400], timestamp_ms=base + i)
        if later:
            label = em.events.encode_label(em.Label(event.id, event.label))
            producer.send(labels_topic, value=label, timestamp_ms=base + i + 3)
            if i % 100 == 1:  # a second label for the same id
                producer.send(labels_topic, value=label, timestamp_ms=base + i + 4)
    for i, value in enumerate(bad_labels + [b'{"id": "never-seen", "label": 1}']):
        producer.send(labels_topic, value=value, timestamp_ms=base + 2000 + i)
    producer.flush()
    producer.close()

    updater = LiveUpdater(topic, f"{topic}.pred", labels_topic=labels_topic, state_dir=tmp_path,
                          bootstrap_servers=kafka_bootstrap, idle_timeout_s=3, records_per_transaction=100,
                          metrics_port=0).start()
    during = []
    while updater.running:  # scraped while the updater's thread changes what is read
        during.append(scrape(updater.metrics_url))
        time.sleep(0.05)
    stats = updater.join(60)
    samples = scrape(updater.metrics_url)
    updater.close_metrics()

    assert any(total(s, "eventml_live_running") == 1 for s in during)
    events_seen = [total(s, "eventml_live_events_total") for s in during]
    assert events_seen == sorted(events_seen)  # a counter never goes down
    assert stats.events == len(good) and stats.duplicate == len(range(1, 1200, 100)) and stats.unknown_id == 1
    assert_counters_equal_stats(samples, stats)
    assert total(samples, "eventml_live_labels_total", outcome="joined") == len(good) // 2
    dead = read_dead_letters(topic, bootstrap_servers=kafka_bootstrap, idle_timeout_s=10)  # not ended early by a wait
    dead_labels = read_dead_letters(labels_topic, bootstrap_servers=kafka_bootstrap, idle_timeout_s=10)
    reasons = collections.Counter(list(dead["reason"]) + list(dead_labels["reason"]))
    assert by_label(samples, "eventml_live_dead_letters_total", "reason") == reasons
    assert set(by_label(samples, "eventml_live_events_total", "partition")) == {"all"}
    metric = {(labels["metric"], labels["window"]): value for name, labels, value in samples
              if name == "eventml_live_model_metric"}
    assert metric["accuracy", "cumulative"] == stats.score and metric["accuracy", "rolling"] == stats.rolling_score
    assert 0 < metric["log_loss", "cumulative"] == updater.summary().iloc[-1]["log_loss"]
    assert total(samples, "eventml_live_commit_seconds_count") == stats.transactions
    assert total(samples, "eventml_live_commit_seconds_sum") > 0
    lag = [by_label(s, "eventml_live_consumer_lag", "topic") for s in during]
    assert any(set(seen) == {topic, labels_topic} for seen in lag)  # every input partition, while running


def test_eventml_live_serves_metrics_on_its_port_counted_across_a_kill_9(kafka_bootstrap, topic, tmp_path):
    n = 500
    produce_events(list(em.synthetic("sea", n, seed=22)), topic, kafka_bootstrap)
    port = free_port()
    killed = live_process(kafka_bootstrap, topic, f"{topic}.pred", "--state-dir", str(tmp_path),
                          "--records-per-transaction", "100", "--metrics-port", str(port), kill_at="before_commit:3")
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL  # between its 3rd snapshot and commit: two transactions count
    process = live_process(kafka_bootstrap, topic, f"{topic}.pred", "--state-dir", str(tmp_path),
                           "--records-per-transaction", "100", "--idle-timeout", "60", "--metrics-port", str(port))
    try:
        url, samples, deadline = f"http://127.0.0.1:{port}/metrics", [], time.monotonic() + 60
        # the commit's time is observed once it returned, after its state counted the transaction: a scrape
        # between the two shows 5 transactions and 2 commit times (it happened once under load)
        while time.monotonic() < deadline and (total(samples, "eventml_live_events_total") < n
                                               or total(samples, "eventml_live_transactions_total") < 5
                                               or total(samples, "eventml_live_commit_seconds_count") < 3):
            time.sleep(0.2)
            try:
                samples = scrape(url)
            except OSError:  # not listening yet
                pass
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert f"Prometheus metrics at {url}" in err and f"live: {n} events predicted" in out
    assert total(samples, "eventml_live_events_total") == n and total(samples, "eventml_live_running") == 1
    assert total(samples, "eventml_live_restarts_total") == 1 and "1 restarts, 5 transactions" in out
    assert total(samples, "eventml_live_transactions_total") == 5  # 2 before the kill, 3 after
    assert total(samples, "eventml_live_commit_seconds_count") == 3  # this process's own commits


def test_each_model_of_several_reports_its_own_counts_and_one_is_the_champion(kafka_bootstrap, topic, tmp_path):
    produce_events(list(em.synthetic("sea", 800, seed=5)), topic, kafka_bootstrap)
    updater = LiveUpdater(topic, f"{topic}.pred", models=["river_gnb", "river_logreg"], state_dir=tmp_path,
                          promotion=em.live.Promotion(metric="accuracy", window=100, margin=0.0, min_labels=50),
                          bootstrap_servers=kafka_bootstrap, idle_timeout_s=2, metrics_port=0)
    try:
        stats = updater.run()
        samples = scrape(updater.metrics_url)
    finally:
        updater.close_metrics()
    written = em.read_predictions(f"{topic}.pred", challengers=True, bootstrap_servers=kafka_bootstrap)
    for model in ("river_gnb", "river_logreg"):  # every model predicted and learned every event
        assert total(samples, "eventml_live_predictions_total", model=model) == (written.model == model).sum() == 800
        assert total(samples, "eventml_live_model_version", model=model) == stats.labelled == 800
    assert by_label(samples, "eventml_live_champion", "model") == {
        model: float(model == updater.champion) for model in ("river_gnb", "river_logreg")}
    assert total(samples, "eventml_live_events_total") == written.champion.sum() == 800


# ----------------------------------------------------------------------------- a group


def partitions_of(samples):
    """The partitions that have a series of any per-partition family."""
    return {labels["partition"] for name, labels, _ in samples
            if name.startswith("eventml_live_") and "partition" in labels and name != "eventml_live_consumer_lag"}


def test_each_member_of_a_group_reports_its_own_partitions_and_a_moved_partition_is_gone(kafka_bootstrap, topic):
    group = f"{topic}-g"
    em.create_topic(topic, 4, bootstrap_servers=kafka_bootstrap)
    produce_events(list(em.synthetic("sea", 2000, seed=23)), topic, kafka_bootstrap)
    settings = dict(group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap, idle_timeout_s=8,
                    records_per_transaction=200, session_timeout_s=6, metrics_port=0)
    first = GroupUpdater(topic, f"{topic}.pred", name="first", **settings).start()
    deadline = time.monotonic() + 60
    while first.stats.events < 2000 and time.monotonic() < deadline:
        time.sleep(0.1)
    alone = scrape(first.metrics_url)
    assert partitions_of(alone) == {"0", "1", "2", "3"}

    second = GroupUpdater(topic, f"{topic}.pred", name="second", **settings).start()
    while time.monotonic() < deadline:  # the rebalance: both own partitions, between them all of them
        owned = first.owned
        samples = scrape(first.metrics_url)
        if owned and second.owned and first.owned == owned and sorted(owned + second.owned) == [0, 1, 2, 3]:
            break
        time.sleep(0.1)
    moved = {"0", "1", "2", "3"} - {str(p) for p in owned}
    assert moved and partitions_of(samples) == {str(p) for p in owned}
    lag_partitions = {labels["partition"] for name, labels, _ in samples if name == "eventml_live_consumer_lag"}
    assert lag_partitions <= {str(p) for p in owned} and not lag_partitions & moved

    produce_events([em.Event(f"more-{e.id}", e.features, e.label, e.ts) for e in em.synthetic("sea", 1000, seed=24)],
                   topic, kafka_bootstrap)
    stats = {"first": first.join(120), "second": second.join(120)}
    for member in (first, second):
        samples = scrape(member.metrics_url)
        member.close_metrics()
        member_stats = stats[member.name]
        assert partitions_of(samples) == {str(p) for p in member_stats.partitions}
        assert_counters_equal_stats(samples, member_stats)
        learned = by_label(samples, "eventml_live_learned_total", "partition")
        accuracy = {labels["partition"]: value for name, labels, value in samples if name == "eventml_live_model_metric"
                    and labels["metric"] == "accuracy" and labels["window"] == "cumulative"}
        weighted = sum(accuracy[p] * learned[p] for p in accuracy) / sum(learned.values())
        assert weighted == pytest.approx(member_stats.score, rel=1e-12)
    assert sum(s.session_events for s in stats.values()) == 3000


# ----------------------------------------------------------------------------- a real Prometheus


@pytest.fixture
def prometheus(tmp_path):
    """Start Debian's ``prometheus`` server scraping the targets given to the returned function every 0.5 s;
    return its query URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("no prometheus server: on Debian, apt-get install prometheus (./run.sh test installs it)")
    processes = []

    def start(target):
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(f"global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\n"
                          f"scrape_configs:\n  - job_name: eventml-live\n    static_configs:\n"
                          f"      - targets: ['{target}']\n")
        process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                    f"--web.listen-address=127.0.0.1:{port}"],
                                   stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
        processes.append(process)
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return url
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "prometheus.log").read_text()[-2000:]) from None
                time.sleep(0.2)

    yield start
    for process in processes:
        process.terminate()
        process.wait(30)


def query(prometheus_url, promql):
    """Prometheus' HTTP API: the instant vector of ``promql`` as [(labels, value)]."""
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as answer:
        body = orjson.loads(answer.read())
    assert body["status"] == "success", body
    return [(item["metric"], float(item["value"][1])) for item in body["data"]["result"]]


def test_a_real_prometheus_scrapes_the_updater_and_answers_its_accuracy(kafka_bootstrap, topic, tmp_path, prometheus):
    produce_events(list(em.synthetic("sea", 3000, seed=25)), topic, kafka_bootstrap)
    updater = LiveUpdater(topic, f"{topic}.pred", state_dir=tmp_path / "state", bootstrap_servers=kafka_bootstrap,
                          idle_timeout_s=2, metrics_port=0)
    prometheus_url = prometheus(f"127.0.0.1:{updater.exporter.server.port}")
    stats = updater.run()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until Prometheus has scraped the ended run (not yet begun: no events)
            ended = query(prometheus_url, "eventml_live_running == 0 and on() sum(eventml_live_events_total) == 3000")
            if ended:
                break
            time.sleep(0.25)
        accuracy = query(prometheus_url, 'eventml_live_model_metric{metric="accuracy",window="cumulative"}')
        events = query(prometheus_url, "sum(eventml_live_events_total)")
    finally:
        updater.close_metrics()
    assert [(labels["model"], labels["partition"], labels["job"], value) for labels, value in accuracy] == [
        ("river_logreg", "all", "eventml-live", stats.score)]
    assert events == [({}, 3000.0)] and 0.5 < stats.score < 1


# ----------------------------------------------------------------------------- the prediction service


def requests_by(samples):
    """``{(route, method, status): count}`` of eventml_serve_requests_total."""
    return {(labels["route"], labels["method"], labels["status"]): value for name, labels, value in samples
            if name == "eventml_serve_requests_total"}


def test_the_service_counts_requests_by_route_and_status_before_any_model(tmp_path):
    with em.serve(tmp_path / "nothing-yet", bootstrap_servers="127.0.0.1:1") as server:
        for body in (b'{"id": "a", "features": {"x": 1}}', b"not json"):
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(urllib.request.Request(f"{server.url}/predict", data=body), timeout=10)
        urllib.request.urlopen(f"{server.url}/healthz", timeout=10).read()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{server.url}/no/such/route/{os.urandom(4).hex()}", timeout=10)
        samples = scrape(f"{server.url}/metrics")
    assert requests_by(samples) == {("/predict", "POST", "503"): 1, ("/predict", "POST", "422"): 1,
                                    ("/healthz", "GET", "200"): 1, ("other", "GET", "404"): 1}
    assert total(samples, "eventml_serve_request_seconds_count", route="/predict") == 2
    assert total(samples, "eventml_serve_predictions_total") == 0 and total(samples, "eventml_serve_model_ready") == 0
    assert not [name for name, _, _ in samples if name.startswith("eventml_serve_model_version")]


def test_the_service_reports_its_answers_and_the_served_models_version_and_age(kafka_bootstrap, topic, tmp_path):
    n = 600
    produce_events(list(em.synthetic("sea", n, seed=26)), topic, kafka_bootstrap)
    LiveUpdater(topic, f"{topic}.pred", state_dir=tmp_path, bootstrap_servers=kafka_bootstrap, max_events=n,
                records_per_transaction=200).run()
    probes = [{"id": f"probe-{e.id}", "features": e.features} for e in em.synthetic("sea", 25, seed=99)]
    with em.serve(tmp_path, bootstrap_servers=kafka_bootstrap) as server:
        served = server.wait_for_model(30, sequence=3)
        post = urllib.request.Request(f"{server.url}/predict", data=orjson.dumps(probes))
        assert len(orjson.loads(urllib.request.urlopen(post, timeout=10).read())) == len(probes)
        for probe in probes[:3]:
            urllib.request.urlopen(urllib.request.Request(f"{server.url}/predict", data=orjson.dumps(probe)), timeout=10)
        before = time.time()
        samples = scrape(f"{server.url}/metrics")
        after = time.time()
        service = server.service
    assert requests_by(samples) == {("/predict", "POST", "200"): 4}  # this scrape is counted once answered
    assert total(samples, "eventml_serve_predictions_total") == service.served == len(probes) + 3
    assert total(samples, "eventml_serve_model_errors_total") == service.model_errors == 0
    assert total(samples, "eventml_serve_swaps_total") == service.watcher.swaps >= 1
    assert total(samples, "eventml_serve_model_ready") == 1
    assert by_label(samples, "eventml_serve_model_version", "partition") == {"all": n} and served.model_version == n
    assert total(samples, "eventml_serve_model_sequence", model="river_logreg") == served.sequence
    assert before - served.written_at <= total(samples, "eventml_serve_model_age_seconds") <= after - served.written_at
    assert total(samples, "eventml_serve_model_served_since_seconds") == served.served_since


def test_a_group_service_reports_each_partitions_model(kafka_bootstrap, topic):
    group = f"{topic}-g"
    em.create_topic(topic, 2, bootstrap_servers=kafka_bootstrap)
    produce_events(list(em.synthetic("sea", 800, seed=27)), topic, kafka_bootstrap)
    updater = GroupUpdater(topic, f"{topic}.pred", group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap,
                           idle_timeout_s=2, metrics_port=0)
    updater.run()
    learned = by_label(scrape(updater.metrics_url), "eventml_live_learned_total", "partition")
    updater.close_metrics()
    with em.serve(group=group, events_topic=topic, state_key=KEY, bootstrap_servers=kafka_bootstrap) as server:
        server.wait_for_model(30)
        samples = scrape(f"{server.url}/metrics")
    assert by_label(samples, "eventml_serve_model_version", "partition") == learned
    assert set(learned) == {"0", "1"} and sum(learned.values()) == 800


def test_the_documented_prometheus_yml_and_alerting_rules_are_valid_for_prometheus(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("no promtool (Debian's prometheus package has it; ./run.sh test installs it)")
    page = (Path(__file__).resolve().parents[1] / "docs" / "monitoring.md").read_text()
    config, rules = re.findall(r"```yaml\n(.*?)```", page, flags=re.DOTALL)
    assert "job_name: eventml-live" in config and "rule_files: [eventml-alerts.yml]" in config
    assert rules.count("- alert: ") == 4
    (tmp_path / "prometheus.yml").write_text(config)
    (tmp_path / "eventml-alerts.yml").write_text(rules)
    for what, path in (("config", "prometheus.yml"), ("rules", "eventml-alerts.yml")):
        checked = subprocess.run([promtool, "check", what, str(tmp_path / path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
