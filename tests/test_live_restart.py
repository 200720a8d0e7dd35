"""A restart by hand after ``kill -9``: it imports only what the committed model needs, and the transaction the
killed updater left open is aborted before the updater's own producer asks (issue 20). Real broker; no timing
asserts (``benchmarks/bench_live.py --parts restart`` measures the time to the first new prediction)."""

from __future__ import annotations

import signal
import subprocess
import sys

from kafka import KafkaConsumer, TopicPartition

import eventml as em
from eventml.live.clients import abort_left_open

from live_helpers import live_process, offline_predictions, produce_events, published, resumable

#: what `eventml live` with a river model never needs: libraries for tables, plots, serving, scikit-learn's
#: models, SciPy's statistics (river.metrics, river.proba), river's datasets; tqdm with --quiet
NOT_NEEDED = ("pandas", "matplotlib", "sklearn", "scipy.stats", "fastapi", "uvicorn", "prometheus_client", "tqdm",
              "river.metrics", "river.proba", "river.datasets", "river.stream", "river.tree", "river.drift")
RESTART = """
import sys
from eventml.cli import main
code = main(sys.argv[1:])
print("imported:", " ".join(sorted(m for m in sys.modules if m.split(".")[0] in {"river", "scipy", "numpy"}
                                   or m in %r)))
sys.exit(code)
""" % (NOT_NEEDED,)


def test_a_restart_after_kill_imports_only_the_modules_its_model_needs_and_predicts_each_event_once(
        kafka_bootstrap, topic, tmp_path):
    n = 600
    events = list(em.synthetic("sea", n, seed=20))
    produce_events(events, topic, kafka_bootstrap)
    options = (*resumable(tmp_path / "state", n), "--bootstrap-servers", kafka_bootstrap)
    killed = live_process(kafka_bootstrap, topic, f"{topic}.pred", *options, kill_at="before_commit:3")
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL

    command = ["live", "--events", topic, "--predictions", f"{topic}.pred", *options, "--quiet"]
    restart = subprocess.run([sys.executable, "-c", RESTART, *command], capture_output=True, text=True, timeout=120)
    assert restart.returncode == 0, restart.stderr
    assert f"live: {n} events predicted" in restart.stdout and "1 restarts" in restart.stdout
    imported = set(restart.stdout.split("imported:")[1].split())
    # the committed pipeline was loaded from its own modules...
    assert {"river.preprocessing.scale", "river.linear_model.log_reg", "river.compose.pipeline"} <= imported
    # ...and nothing else of weight came with them
    heavy = sorted(name for name in imported if any(name == m or name.startswith(m + ".") for m in NOT_NEEDED))
    assert heavy == []
    got, count = published(f"{topic}.pred", kafka_bootstrap)
    assert count == n and got == offline_predictions(events)


def test_a_transaction_a_killed_producer_left_open_is_aborted_by_abort_left_open(kafka_bootstrap, topic):
    transactional_id = f"{topic}-txn"
    left_open = f"""
import os, signal, confluent_kafka
config = {{"bootstrap.servers": "{kafka_bootstrap}", "transactional.id": "{transactional_id}"}}
producer = confluent_kafka.Producer(config)
producer.init_transactions(30)
producer.begin_transaction()
producer.produce("{topic}", b"never committed")
assert producer.flush(30) == 0
os.kill(os.getpid(), signal.SIGKILL)
"""
    em.create_topic(topic, bootstrap_servers=kafka_bootstrap)
    assert subprocess.run([sys.executable, "-c", left_open], timeout=60).returncode == -signal.SIGKILL
    tp = TopicPartition(topic, 0)

    def end(isolation_level: str) -> int:
        consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, isolation_level=isolation_level)
        try:
            return consumer.end_offsets([tp])[tp]
        finally:
            consumer.close()

    # the open transaction holds read_committed readers at its first record (for the broker's transaction
    # timeout, a minute, if nobody aborts it)
    assert (end("read_uncommitted"), end("read_committed")) == (1, 0)
    abort_left_open(em.KafkaSettings(kafka_bootstrap), transactional_id)
    assert end("read_committed") == end("read_uncommitted") == 2  # the record and the abort marker


LEARN = """
import pickle, sys
if sys.argv[1] == "deferred":
    from eventml.lazy import defer_package_inits
    defer_package_inits("river")
import eventml as em
from eventml.learners import learner_names, make_learner
for name in [n for n in learner_names() if n.startswith("river_")]:
    learner = make_learner(name, seed=3)
    regression = learner.task == "regression"
    seen = []
    for i, event in enumerate(em.synthetic("sea", 400, seed=5)):
        x = event.features
        y = x["0"] + 2 * x["1"] - x["2"] if regression else event.label
        seen.append(learner.predict_one(x) if regression else learner.predict_proba_one(x))
        learner.learn_one(x, y)
        if i == 200:
            learner = pickle.loads(pickle.dumps(learner))  # as a restart loads it
    print(name, repr(seen))
"""


def test_with_river_s_package_inits_deferred_every_river_learner_predicts_as_without():
    runs = {how: subprocess.run([sys.executable, "-c", LEARN, how], capture_output=True, text=True, timeout=300)
            for how in ("deferred", "plain")}
    for run in runs.values():
        assert run.returncode == 0, run.stderr
    lines = runs["deferred"].stdout.splitlines()
    assert len(lines) == 6 and lines == runs["plain"].stdout.splitlines()
