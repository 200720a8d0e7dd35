"""Live updater speed: throughput against in-memory prequential, latency, restart time.

In one run, against one real broker, with river StandardScaler | LogisticRegression
(``river_logreg``) and the metrics the live updater keeps (accuracy and log loss). The updater's
clients are confluent-kafka (librdkafka) ones; the producers and readers around it here use
kafka-python. The JSON names the client versions.

(a) **Throughput**, side by side, ``--rounds`` times on the same sea events:
    :func:`eventml.prequential` on the events in memory, then :class:`eventml.live.LiveUpdater`
    reading them from Kafka, publishing one prediction each, learning and committing
    transactions. The live rate is the steady one: events per second between the summary row
    at 10% of the events and the last row (connecting and the broker's one-time set-up of the
    first transaction are left out; ``live_wall_events_per_s`` includes them). Reported as the
    median ratio and its range.
(b) **Latency from produce to prediction available**, at steady produce rates (``--rates``,
    default 500 and 2,000 events/s, each for ``--latency-seconds``): a producer process writes
    events with eventml's rate limiter (events without ``ts``, so a prediction's ``event_ts`` is
    its event's record timestamp, taken by the producer when it sends), the updater runs in this process, and a
    reader process with ``isolation_level="read_committed"`` timestamps each prediction when
    its poll returns it. Latency = that time - ``event_ts``: it includes the producer's linger
    (eventml default 20 ms), the updater's transaction and commit, and the reader's fetch (max
    wait 10 ms). The first second of events is a warm-up and is left out. The updater's own
    figure (commit time - record timestamp, :class:`eventml.live.LiveStats`) is reported too.
(c) **Restart**: ``eventml live`` is killed by SIGKILL between writing its 3rd snapshot and
    committing it; then the time from starting it again to the first new prediction a
    ``read_committed`` reader sees, and, for scale, the time a bare ``import eventml.cli``
    takes in a new process.

Prints a table and writes JSON to ``benchmarks/results/live.json``.

Usage: ``python benchmarks/bench_live.py [--events 20000] [--rounds 3] [--rates 500 2000]
[--latency-seconds 10] [--profile] [--bootstrap-servers HOST:PORT]`` (without a bootstrap
address a local broker is started in a temporary folder). A full run takes about a minute.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import confluent_kafka
import numpy as np
import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import eventml as em
from eventml.kafka import kafka_for
from eventml.live import KILL_ENV, LiveUpdater

MODEL = "river_logreg"
METRICS = ("accuracy", "log_loss")


def produce(events, topic, servers):
    em.recreate_topic(topic, bootstrap_servers=servers)
    producer = KafkaProducer(bootstrap_servers=servers, linger_ms=20)
    for event in events:
        producer.send(topic, value=em.encode_event(event), key=event.id.encode())
    producer.flush()
    producer.close()


# ----------------------------------------------------------------------------- (a) throughput


def steady_rate(summary) -> float:
    """Events/s between the summary row at 10% of the events and the last row."""
    rows = summary[summary["events"] >= summary["events"].iloc[-1] * 0.1]
    first, last = rows.iloc[0], rows.iloc[-1]
    return (last["events"] - first["events"]) / (last["time"] - first["time"])


def throughput(events, topic, servers, folder, rounds):
    rows = []
    for i in range(rounds):
        started = time.perf_counter()
        em.prequential(events, MODEL, metrics=METRICS, measure_memory=False)
        prequential = len(events) / (time.perf_counter() - started)
        updater = LiveUpdater(topic, f"{topic}.pred{i}", model=MODEL, state_dir=folder / f"live{i}",
                              bootstrap_servers=servers, max_events=len(events), summary_every=500)
        started = time.perf_counter()
        stats = updater.run()
        wall = len(events) / (time.perf_counter() - started)
        live = steady_rate(updater.summary())
        rows.append({"prequential": prequential, "live": live, "wall": wall, "ratio": live / prequential,
                     "transactions": stats.transactions})
    return rows


def profile(topic, servers, folder, n, lines=30):
    """Print a cProfile of one live run, by own time (the producer's I/O thread is not in it)."""
    updater = LiveUpdater(topic, f"{topic}.profile", model=MODEL, state_dir=folder / "profile",
                          bootstrap_servers=servers, max_events=n)
    profiler = cProfile.Profile()
    profiler.runcall(updater.run)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(lines)


# ----------------------------------------------------------------------------- (b) latency


def paced_producer(servers, topic, n, rate, seed):
    """Child process: write n sea events at ``rate`` events/s, without ts (event time = send time)."""
    events = (em.Event(e.id, e.features, e.label, None) for e in em.synthetic("sea", n, seed=seed))
    em.produce(events, topic, bootstrap_servers=servers, rate=rate, progress=False)


def visibility_reader(servers, topic, n, timeout_s, out):
    """Child process: read committed predictions; send back [(event_ts, seen_at)] in topic order."""
    reader = KafkaConsumer(bootstrap_servers=servers, isolation_level="read_committed", fetch_max_wait_ms=10)
    tp = TopicPartition(topic, 0)
    reader.assign([tp])
    reader.seek_to_beginning(tp)
    seen = []
    deadline = time.monotonic() + timeout_s
    while len(seen) < n and time.monotonic() < deadline:
        batches = reader.poll(timeout_ms=50)
        now = time.time()
        for records in batches.values():
            seen.extend((orjson.loads(r.value)["event_ts"], now) for r in records)
    reader.close()
    out.send(seen)


def latency(servers, rate, seconds, folder, warmup_s=1.0):
    topic = f"bench-latency-{rate}-{int(time.time())}"
    n = int(rate * seconds)
    em.recreate_topic(topic, bootstrap_servers=servers)
    em.recreate_topic(f"{topic}.pred", bootstrap_servers=servers)
    updater = LiveUpdater(topic, f"{topic}.pred", model=MODEL, state_dir=folder / f"latency{rate}",
                          bootstrap_servers=servers).start()
    while not updater.stats.running:
        time.sleep(0.01)
    spawn = multiprocessing.get_context("spawn")
    receive, send = spawn.Pipe(duplex=False)
    reader = spawn.Process(target=visibility_reader, args=(servers, f"{topic}.pred", n, seconds + 60, send))
    reader.start()
    producer = spawn.Process(target=paced_producer, args=(servers, topic, n, rate, rate))
    producer.start()
    seen = receive.recv()
    reader.join()
    producer.join()
    updater.stop()
    stats = updater.join(30)
    measured = np.array([seen_at - ts for ts, seen_at in seen[int(rate * warmup_s):]])
    return {"rate": rate, "events": n, "predictions_seen": len(seen),
            "p50_s": float(np.percentile(measured, 50)), "p99_s": float(np.percentile(measured, 99)),
            "max_s": float(measured.max()), "updater_p50_s": stats.latency_p50_s,
            "updater_p99_s": stats.latency_p99_s, "transactions_per_s": stats.transactions / seconds}


# ----------------------------------------------------------------------------- (c) restart


def restart_time(servers, topic, n, folder):
    """Kill ``eventml live`` after its 3rd snapshot, start it again, time the first new prediction."""
    predictions = f"{topic}.restart"
    cmd = [sys.executable, "-m", "eventml.cli", "live", "--events", topic, "--predictions", predictions,
           "--state-dir", str(folder / "restart"), "--max-events", str(n), "--records-per-transaction", "500", "--quiet",
           "--bootstrap-servers", servers]
    killed = subprocess.run(cmd, env={**os.environ, KILL_ENV: "before_commit:3"}, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    reader = KafkaConsumer(bootstrap_servers=servers, isolation_level="read_committed", fetch_max_wait_ms=10)
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
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import eventml.cli"], check=True)
    return elapsed, time.perf_counter() - started


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rates", type=float, nargs="+", default=[500, 2000])
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--profile", action="store_true",
                        help="also print where one live run spends its time (cProfile of the updater's thread)")
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "live.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, kafka_for(args.bootstrap_servers) as servers:
        folder = Path(tmp)
        n = args.events
        events = list(em.synthetic("sea", n, seed=1))
        topic = f"bench-live-{int(time.time())}"
        produce(events, topic, servers)
        rounds = throughput(events, topic, servers, folder, args.rounds)
        if args.profile:
            profile(topic, servers, folder, n)
        latencies = [latency(servers, rate, args.latency_seconds, folder) for rate in args.rates]
        restart_s, import_s = restart_time(servers, topic, n, folder)
    ratios = [r["ratio"] for r in rounds]
    result = {
        "events": n, "model": MODEL, "metrics": list(METRICS), "rounds": args.rounds,
        "updater_client": f"confluent-kafka {confluent_kafka.__version__} / librdkafka {confluent_kafka.libversion()[0]}",
        "prequential_events_per_s": round(statistics.median(r["prequential"] for r in rounds)),
        "live_events_per_s": round(statistics.median(r["live"] for r in rounds)),
        "live_wall_events_per_s": round(statistics.median(r["wall"] for r in rounds)),
        "live_ratio_vs_prequential": round(statistics.median(ratios), 3),
        "live_ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
        "live_transactions": rounds[-1]["transactions"],
        "latency": [{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()} for row in latencies],
        "restart_to_first_prediction_s": round(restart_s, 2),
        "python_import_s": round(import_s, 2),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nthroughput ({n} sea events, {MODEL}, median of {args.rounds} rounds; updater on "
          f"{result['updater_client']})")
    print(f"  in-memory prequential  {result['prequential_events_per_s']:>8} events/s")
    print(f"  live, steady           {result['live_events_per_s']:>8} events/s   ratio "
          f"{result['live_ratio_vs_prequential']:.3f} (range {min(ratios):.3f}-{max(ratios):.3f})")
    print(f"  live, with start-up    {result['live_wall_events_per_s']:>8} events/s")
    print("\nlatency, produce -> prediction readable (read_committed)")
    print(f"  {'rate/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'updater p50':>12} {'p99':>6} {'txn/s':>6}")
    for row in latencies:
        ms = [row[key] * 1e3 for key in ("p50_s", "p99_s", "max_s", "updater_p50_s", "updater_p99_s")]
        print(f"  {row['rate']:>7g} {ms[0]:>8.1f} {ms[1]:>8.1f} {ms[2]:>8.1f} {ms[3]:>12.1f} {ms[4]:>6.1f} "
              f"{row['transactions_per_s']:>6.1f}")
    print(f"\nrestart after kill -9 -> first new prediction: {restart_s:.2f} s "
          f"(of which a new Python process importing eventml: {import_s:.2f} s)")
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
