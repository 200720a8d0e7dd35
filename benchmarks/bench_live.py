"""Live updater speed: events/s against in-memory prequential, and restart time after kill -9.

In one run, on the same sea events with river StandardScaler | LogisticRegression:

- ``prequential_events_per_s``: :func:`eventml.prequential` on the events in memory, with the
  metrics the live updater keeps (accuracy and log loss);
- ``live_events_per_s``: :class:`eventml.live.LiveUpdater` reading them from Kafka, publishing
  one prediction each, learning and committing transactions (steady rate between commits), and
  ``live_wall_events_per_s`` including connecting and restoring;
- ``restart_to_first_prediction_s``: after a ``kill -9`` of ``eventml live`` mid-run, the time
  from starting it again to the first new prediction a ``read_committed`` reader sees.

Usage: ``python benchmarks/bench_live.py [--events 20000] [--bootstrap-servers HOST:PORT]``
(without a bootstrap address a local broker is started in a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import eventml as em
from eventml.live import KILL_ENV, LiveUpdater


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def produce(events, topic, servers):
    em.recreate_topic(topic, bootstrap_servers=servers)
    producer = KafkaProducer(bootstrap_servers=servers, linger_ms=20)
    for event in events:
        producer.send(topic, value=em.encode_event(event), key=event.id.encode())
    producer.flush()
    producer.close()


def restart_time(servers, topic, n, folder):
    """Kill ``eventml live`` after its 3rd snapshot, start it again, time the first new prediction."""
    predictions = f"{topic}.restart"
    cmd = [sys.executable, "-m", "eventml.cli", "live", "--events", topic, "--predictions", predictions,
           "--state-dir", str(folder / "restart"), "--max-events", str(n), "--checkpoint-every", "500", "--quiet",
           "--bootstrap-servers", servers]
    killed = subprocess.run(cmd, env={**os.environ, KILL_ENV: "before_commit:3"}, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    reader = KafkaConsumer(bootstrap_servers=servers, isolation_level="read_committed")
    tp = TopicPartition(predictions, 0)
    reader.assign([tp])
    reader.seek_to_end(tp)
    reader.position(tp)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not reader.poll(timeout_ms=20):
        pass
    elapsed = time.perf_counter() - started
    proc.wait(120)
    reader.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "live.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        kafka = None
        servers = args.bootstrap_servers
        if servers is None:
            kafka = em.LocalKafka(port=free_port(), controller_port=free_port(), data_dir=folder / "kafka")
            servers = kafka.start().bootstrap_servers
        try:
            n = args.events
            events = list(em.synthetic("sea", n, seed=1))
            topic = f"bench-live-{int(time.time())}"
            produce(events, topic, servers)

            started = time.perf_counter()
            em.prequential(events, "river_logreg", metrics=("accuracy", "log_loss"), measure_memory=False)
            prequential_rate = n / (time.perf_counter() - started)

            updater = LiveUpdater(topic, f"{topic}.pred", model="river_logreg", state_dir=folder / "live",
                                  bootstrap_servers=servers, max_events=n)
            started = time.perf_counter()
            stats = updater.run()
            wall_rate = n / (time.perf_counter() - started)
            result = {
                "events": n, "model": "river_logreg", "checkpoint_every": updater.checkpoint_every,
                "checkpoint_interval_s": updater.checkpoint_interval_s,
                "prequential_events_per_s": round(prequential_rate),
                "live_events_per_s": round(stats.events_per_s),
                "live_wall_events_per_s": round(wall_rate),
                "live_ratio_vs_prequential": round(stats.events_per_s / prequential_rate, 3),
                "live_transactions": stats.transactions,
                "restart_to_first_prediction_s": round(restart_time(servers, topic, n, folder), 2),
            }
        finally:
            if kafka is not None:
                kafka.stop()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
