"""The prediction service: a real uvicorn server on a free port, a real HTTP client (httpx), and,
for the integration tests, a real broker and a real live updater."""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from kafka import KafkaProducer

import eventml as em
from eventml.kafka import free_port
from eventml.live import LiveUpdater
from eventml.live.snapshots import list_snapshots, load_snapshot
from eventml.scoring import Scorer

from live_helpers import WINDOW_TEXTS, live_process, produce_events, resumable, windowed_answer

PROBES = [{"id": f"probe-{e.id}", "features": e.features} for e in em.synthetic("sea", 100, seed=99)]




def expected_answer(scorer, probe):
    label, proba = scorer.predict(probe["features"])
    return label, {str(k): v for k, v in proba.items()}


def sequence_on_disk(state_dir) -> int:
    return max((int(p.name.split("-")[1]) for p in list_snapshots(state_dir)), default=0)


# ----------------------------------------------------------------------------- no broker


def test_before_any_commit_a_request_gets_503_and_a_bad_body_422_naming_the_field(tmp_path):
    with em.serve(tmp_path / "nothing-yet", bootstrap_servers="127.0.0.1:1") as server, \
            httpx.Client(base_url=server.url, timeout=10) as http:
        assert server.url.startswith("http://127.0.0.1:")
        answer = http.post("/predict", json=PROBES[0])
        assert answer.status_code == 503
        assert answer.json()["detail"].startswith("no committed model to serve: no live updater has started")
        assert http.get("/model").status_code == 503
        health = http.get("/healthz")
        assert health.status_code == 200 and health.json()["model_ready"] is False
        bad = {
            b"not json": (["body"], "not_json"),
            b"[]": (["body"], "empty"),
            b"42": (["body"], "not_object"),
            b'{"features": {"x": 1}}': (["body", "id"], "missing_id"),
            b'{"id": "", "features": {"x": 1}}': (["body", "id"], "bad_id"),
            b'{"id": "a"}': (["body", "features"], "missing_features"),
            b'{"id": "a", "features": [1, 2]}': (["body", "features"], "bad_features"),
            b'{"id": "a", "features": {"x": 1, "color": {"r": 1}}}': (["body", "features", "color"],
                                                                      "bad_feature_value"),
            b'[{"id": "a", "features": {"x": 1}}, {"id": "b", "features": {"x": [1]}}]':
                (["body", 1, "features", "x"], "bad_feature_value"),
            b'{"id": "a", "features": {"x": 1}, "label": [1]}': (["body", "label"], "bad_label"),
            b'{"id": "a", "features": {"x": 1}, "ts": "yesterday"}': (["body", "ts"], "bad_ts"),
        }
        for body, (loc, reason) in bad.items():
            answer = http.post("/predict", content=body, headers={"content-type": "application/json"})
            assert answer.status_code == 422, body
            detail = answer.json()["detail"][0]
            assert (detail["loc"], detail["type"]) == (loc, reason), body
            assert detail["msg"] and "\n" not in detail["msg"]
        docs = http.get("/openapi.json").json()
        assert {"/predict", "/model", "/healthz"} <= set(docs["paths"]) and "EventIn" in docs["components"]["schemas"]
        assert http.get("/docs").status_code == 200


def test_the_serve_command_answers_over_http_and_refuses_loop_topics_without_the_loop(tmp_path):
    port = free_port()
    env = {**os.environ, "EVENTML_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    proc = subprocess.Popen([sys.executable, "-m", "eventml.cli", "serve", "--state-dir", str(tmp_path),
                             "--port", str(port), "--log-level", "warning"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, health = time.monotonic() + 30, None
        while health is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            except httpx.TransportError:
                time.sleep(0.1)
        assert health is not None and health.status_code == 200, proc.stderr.read() if proc.poll() is not None else ""
        assert httpx.post(f"http://127.0.0.1:{port}/predict", json=PROBES[0]).status_code == 503
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and f"on http://127.0.0.1:{port}" in out
    refused = subprocess.run([sys.executable, "-m", "eventml.cli", "serve", "--state-dir", str(tmp_path),
                              "--events-topic", "t"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and refused.stderr.startswith("eventml: error: events_topic and predictions_topic")
    assert refused.stderr.count("\n") == 1
    refused = subprocess.run([sys.executable, "-m", "eventml.cli", "serve", "--state-dir", str(tmp_path),
                              "--key", "user"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and refused.stderr.startswith("eventml: error: key='user' is for a group")


# ----------------------------------------------------------------------------- real broker


@pytest.mark.integration
def test_answers_equal_the_committed_models_own_predictions_and_a_model_error_is_a_500(kafka_bootstrap, topic,
                                                                                        tmp_path):
    n = 600
    produce_events(list(em.synthetic("sea", n, seed=5)), topic, kafka_bootstrap)
    LiveUpdater(topic, f"{topic}.pred", state_dir=tmp_path, bootstrap_servers=kafka_bootstrap, max_events=n,
                records_per_transaction=200).run()
    with em.serve(tmp_path, bootstrap_servers=kafka_bootstrap) as server, \
            httpx.Client(base_url=server.url, timeout=10) as http:
        served = server.wait_for_model(30, sequence=3)
        snapshot = load_snapshot(tmp_path / served.snapshot)
        scorer = snapshot.state.scorer
        described = http.get("/model").json()
        assert described["sequence"] == snapshot.sequence == 3
        assert described["offsets"] == snapshot.offsets == {f"{topic}:0": n}  # what the group committed
        assert described["model_version"] == n and described["events"] == n
        assert described["metrics"]["accuracy"] == pytest.approx(snapshot.state.scorer.metrics()["accuracy"])

        batch = http.post("/predict", json=PROBES).json()
        assert [a["id"] for a in batch] == [p["id"] for p in PROBES]
        assert [(a["prediction"], a["proba"]) for a in batch] == [expected_answer(scorer, p) for p in PROBES]
        assert {(a["model"], a["model_version"]) for a in batch} == {("river_logreg", n)}
        for probe in PROBES[:5]:
            one = http.post("/predict", json=probe).json()
            assert (one["prediction"], one["proba"]) == expected_answer(scorer, probe)
        # null means missing and strings are categories: the wire format's values are all accepted
        mixed = http.post("/predict", json={"id": "m", "features": {"x1": None, "x2": True, "c": "red"}})
        assert mixed.status_code == 200

        class Exploding:
            name, task = "exploding", "classification"

            def predict_proba_one(self, x):
                raise ZeroDivisionError("boom")

        server.service.watcher.current = dataclasses.replace(served, scorer=Scorer(Exploding(), ["accuracy", "log_loss"], 1))
        failed = http.post("/predict", json=PROBES[0])
        assert failed.status_code == 500
        assert failed.json()["detail"].startswith("learner 'exploding' failed to predict event 'probe-e-0': "
                                                  "ZeroDivisionError: boom")
        server.service.watcher.current = served
        assert http.post("/predict", json=PROBES[0]).status_code == 200  # still up
        assert http.get("/healthz").json()["model_errors"] == 1


@pytest.mark.integration
def test_an_updater_with_windows_is_answered_with_the_windowed_features_peeked_from_its_committed_state(
        kafka_bootstrap, topic, tmp_path):
    from eventml.sources import transactions
    from eventml.windows import parse_window

    n = 800
    events = list(transactions(n, seed=31))
    em.create_topic(topic, bootstrap_servers=kafka_bootstrap)
    em.produce(events, topic, key="user", bootstrap_servers=kafka_bootstrap, progress=False)
    LiveUpdater(topic, f"{topic}.pred", state_dir=tmp_path, bootstrap_servers=kafka_bootstrap, max_events=n,
                records_per_transaction=200, windows=[parse_window(text) for text in WINDOW_TEXTS]).run()
    # probes of users seen lately, a new user and no user; at times within the windows, past them, none
    recent = list(dict.fromkeys(e.features["user"] for e in reversed(events[-150:])))[:8]
    last = events[-1].ts
    probes = [{"id": f"probe-{user}-{k}", "features": {"user": user, "merchant": "m1", "amount": 20.0 + k},
               **({"ts": last + dt} if dt is not None else {})}
              for user in recent for k, dt in enumerate((1.0, 400.0, 5000.0, None))]
    probes += [{"id": "new", "features": {"user": 10**6, "amount": 5.0}, "ts": last},
               {"id": "nobody", "features": {"amount": 5.0}, "ts": last}]
    with em.serve(tmp_path, bootstrap_servers=kafka_bootstrap) as server, \
            httpx.Client(base_url=server.url, timeout=10) as http:
        served = server.wait_for_model(30)
        committed = load_snapshot(tmp_path / served.snapshot)  # read on its own
        assert committed.offsets == {f"{topic}:0": n} and committed.state.windows.state_size()["window_keys"] > 0
        before = pickle.dumps(served.windows)
        batch = http.post("/predict", json=probes).json()  # a user's probes in one request: none sees another
        ones = [http.post("/predict", json=probe).json() for probe in probes[::3]]
        described = http.get("/model").json()
        assert server.model is served and pickle.dumps(served.windows) == before  # the committed state, unchanged
    assert described["windows"] == committed.state.windows.names
    for probe, one in [*zip(probes, batch), *zip(probes[::3], ones)]:
        ts = probe.get("ts", one["ts"])  # without ts: at the request's time, the answer's ts
        assert one.get("event_ts") == probe.get("ts")
        assert (one["prediction"], one["proba"]) == windowed_answer(committed.state, probe["features"], ts), probe
    raw = [expected_answer(committed.state.scorer, probe) for probe in probes]
    assert sum((one["prediction"], one["proba"]) != want for one, want in zip(batch, raw)) > len(probes) // 2


@pytest.mark.integration
def test_a_swap_under_concurrent_load_fails_and_loses_no_request(kafka_bootstrap, topic, tmp_path):
    n = 3000
    em.create_topic(topic, bootstrap_servers=kafka_bootstrap)
    produce_events(list(em.synthetic("sea", 200, seed=7)), topic, kafka_bootstrap)
    updater = LiveUpdater(topic, f"{topic}.pred", state_dir=tmp_path, bootstrap_servers=kafka_bootstrap,
                          max_events=n, records_per_transaction=100)
    updater.start()
    with em.serve(tmp_path, bootstrap_servers=kafka_bootstrap, poll_interval_s=0.05) as server:
        first = server.wait_for_model(30)
        job = em.produce_in_background(list(em.synthetic("sea", n, seed=7))[200:], topic, rate=1500,
                                       bootstrap_servers=kafka_bootstrap)
        results: list[list] = [[] for _ in range(6)]
        sent = [0] * 6
        errors: list[BaseException] = []

        def client(k: int) -> None:
            try:
                with httpx.Client(base_url=server.url, timeout=10) as http:
                    while updater.running or sent[k] < 20:
                        body = PROBES[:8] if k % 2 else PROBES[0]  # half send batches
                        sent[k] += 1
                        answer = http.post("/predict", json=body)
                        results[k].append((answer.status_code, answer.json()))
            except BaseException as exc:  # a request that failed outright
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
        for thread in threads:
            thread.start()
        job.join()
        updater.join(60)
        for thread in threads:
            thread.join(30)
        last = server.wait_for_model(10, sequence=sequence_on_disk(tmp_path))

    assert not errors
    assert [len(r) for r in results] == sent  # every request answered
    assert all(status == 200 for r in results for status, _ in r)
    by_version: dict[int, set] = {}
    for k, answers in enumerate(results):
        versions = [(a[0] if isinstance(a, list) else a)["model_version"] for _, a in answers]
        assert versions == sorted(versions), "a client saw the served model go back"
        for _, a in answers:
            one = a[0] if isinstance(a, list) else a
            by_version.setdefault(one["model_version"], set()).add(str(one["proba"]))
    assert len(by_version) >= 3 and server.service.watcher.swaps >= 3, by_version.keys()
    assert all(len(answers) == 1 for answers in by_version.values())  # one model per version: no torn swap
    assert first.model_version <= min(by_version) and last.model_version == n


@pytest.mark.integration
def test_the_snapshot_of_a_transaction_killed_before_its_commit_is_never_served(kafka_bootstrap, topic, tmp_path):
    n = 600
    produce_events(list(em.synthetic("sea", n, seed=11)), topic, kafka_bootstrap)
    with em.serve(tmp_path, bootstrap_servers=kafka_bootstrap, poll_interval_s=0.05) as server:
        seen: list[int] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                model = server.model
                seen.append(model.sequence if model else 0)
                time.sleep(0.005)

        watcher = threading.Thread(target=watch)
        watcher.start()
        # dies between writing the snapshot of its 3rd transaction and committing it
        proc = live_process(kafka_bootstrap, topic, f"{topic}.pred", *resumable(tmp_path, n), kill_at="before_commit:3")
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        assert sequence_on_disk(tmp_path) == 3  # the uncommitted snapshot is on disk...
        time.sleep(1.0)  # ...for 20 polls
        stop.set()
        watcher.join()
        assert max(seen) == 2 and server.model.sequence == 2  # ...and never served
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("/model").json()["offsets"] == {f"{topic}:0": 200}
            assert http.post("/predict", json=PROBES[0]).json()["model_version"] == 200
        # the restarted updater commits again: the service follows it to the end
        proc = live_process(kafka_bootstrap, topic, f"{topic}.pred", *resumable(tmp_path, n))
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        final = server.wait_for_model(10, sequence=sequence_on_disk(tmp_path))
        assert final.offsets == {f"{topic}:0": n} and final.model_version == n


@pytest.mark.integration
def test_the_closed_loop_writes_what_was_served_and_late_labels_score_it(kafka_bootstrap, topic, tmp_path):
    labels_topic, predictions = f"{topic}.labels", f"{topic}.pred"
    produce_events(list(em.synthetic("sea", 300, seed=3)), topic, kafka_bootstrap)
    em.create_topic(labels_topic, bootstrap_servers=kafka_bootstrap)
    updater = LiveUpdater(topic, predictions, labels_topic=labels_topic, state_dir=tmp_path,
                          bootstrap_servers=kafka_bootstrap, records_per_transaction=100).start()
    try:
        with em.serve(tmp_path, bootstrap_servers=kafka_bootstrap, close_loop=True) as server, \
                httpx.Client(base_url=server.url, timeout=10) as http:
            server.wait_for_model(30, sequence=3)
            asked = [em.Event(f"served-{e.id}", e.features, e.label) for e in em.synthetic("sea", 40, seed=8)]
            answers = http.post("/predict", json=[{"id": e.id, "features": e.features} for e in asked[:30]]).json()
            answers += [http.post("/predict", json={"id": e.id, "features": e.features, "label": e.label}).json()
                        for e in asked[30:]]  # a label in a request is not passed on
            assert server.service.loop.flush(10) == 0
            assert server.service.loop.status()["failed"] == 0
        served = em.read_predictions(f"{predictions}.served", bootstrap_servers=kafka_bootstrap)
        assert served[["id", "prediction", "model_version"]].values.tolist() == [
            [a["id"], a["prediction"], a["model_version"]] for a in answers]
        assert served["proba"].tolist() == [a["proba"] for a in answers]
        written = {e.id: e for e in em.read_events(topic, bootstrap_servers=kafka_bootstrap)}
        assert all(written[e.id].features == e.features and written[e.id].label is None for e in asked)

        # the labels come later: the updater learns from the served events, and the served answers are scored
        labels = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        for event in asked:
            labels.send(labels_topic, em.events.encode_label(em.Label(event.id, event.label)), event.id.encode())
        labels.flush()
        labels.close()
        deadline = time.monotonic() + 30
        while updater.stats.labelled < 300 + len(asked) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert updater.stats.labelled == 300 + len(asked) and updater.stats.events == 300 + len(asked)
    finally:
        updater.stop()
        updater.join(30)
    scores = em.served_scores(f"{predictions}.served", labels_topic, bootstrap_servers=kafka_bootstrap)
    truth = {e.id: e.label for e in asked}
    assert scores["id"].tolist() == [a["id"] for a in answers]
    correct = [a["prediction"] == truth[a["id"]] for a in answers]
    assert scores["correct"].tolist() == correct
    assert scores["served_accuracy"].iloc[-1] == pytest.approx(sum(correct) / len(correct))
