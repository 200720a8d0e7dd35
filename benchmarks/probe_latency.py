"""Where the live updater's latency goes at a steady rate: a diagnostic, not a benchmark.

Runs :class:`eventml.live.LiveUpdater` in this process against a local broker while a producer
process writes SEA events at ``--rate`` and a ``read_committed`` reader process timestamps each
prediction (the same producer and reader as ``bench_live.py``'s latency rounds), and records per
transaction the commit's steps (``TransactionCommit.timings``) and per record when the updater's
poll returned it. Prints percentiles of: record time -> the updater's poll, each commit step,
commit end -> the reader sees the prediction, and end to end.

What it showed (issue 11): a record waits for the commit in flight and then for its own; nearly
every commit's first AddOffsetsToTxn and AddPartitionsToTxn meet the broker still completing the
previous commit (CONCURRENT_TRANSACTIONS), and librdkafka retries AddPartitionsToTxn after a fixed
20 ms, so the commit's p99 is ~30 ms; commit end -> readable is 2-3 ms (p99 ~10).

Usage: ``python benchmarks/probe_latency.py [--rate 2000] [--seconds 15] [--producer-linger-ms 20]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np

import bench_live
import eventml as em
import eventml.live.clients as live_clients
import eventml.live.commit as live_commit
from eventml.kafka import kafka_for
from eventml.live import LiveUpdater

COMMITS: list[dict] = []  # per commit: its steps (seconds), when it ended, the events predicted by then
ARRIVALS: list[float] = []  # per record: seconds from its timestamp to the poll that returned it


def record_commits() -> None:
    commit = live_commit.TransactionCommit.__call__

    def traced(self, producer, group_metadata, tasks, send):
        commit(self, producer, group_metadata, tasks, send)
        COMMITS.append({**self.timings, "end": time.time(),
                        "events": sum(task.state.counts["events"] for task in tasks)})

    live_commit.TransactionCommit.__call__ = traced


def record_arrivals() -> None:
    poll = live_clients.LiveClients.poll

    def traced(self, timeout_s):
        messages = poll(self, timeout_s)
        now = time.time()
        ARRIVALS.extend(now - m.timestamp()[1] / 1000 for m in messages if m.error() is None)
        return messages

    live_clients.LiveClients.poll = traced


def percentiles(name: str, seconds) -> None:
    ms = np.asarray(seconds) * 1e3
    print(f"  {name:<36} p50 {np.percentile(ms, 50):6.1f}  p99 {np.percentile(ms, 99):6.1f}  max {ms.max():6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--producer-linger-ms", type=int, default=20)
    args = parser.parse_args()
    record_commits()
    record_arrivals()
    n = int(args.rate * args.seconds)
    with tempfile.TemporaryDirectory() as tmp, kafka_for(None) as servers:
        topic = bench_live.unique("probe")
        em.recreate_topic(topic, bootstrap_servers=servers)
        em.recreate_topic(f"{topic}.pred", bootstrap_servers=servers)
        updater = LiveUpdater(topic, f"{topic}.pred", model=bench_live.MODEL, state_dir=Path(tmp) / "state",
                              bootstrap_servers=servers, seed=bench_live.SEED).start()
        while not updater.stats.running:
            time.sleep(0.01)
        spawn = multiprocessing.get_context("spawn")
        receive, send = spawn.Pipe(duplex=False)
        reader = spawn.Process(target=bench_live.visibility_reader,
                               args=(servers, f"{topic}.pred", n, args.seconds + 60, send))
        reader.start()
        producer = spawn.Process(target=bench_live.paced_producer,
                                 args=(servers, topic, n, args.rate, 7, args.producer_linger_ms))
        producer.start()
        seen = receive.recv()
        reader.join()
        producer.join()
        updater.stop()
        updater.join(30)
    warm = args.rate  # the first second is a warm-up
    commits = COMMITS[20:]
    ends, counts = np.array([c["end"] for c in COMMITS]), np.array([c["events"] for c in COMMITS])
    readable, committed = [], []
    for i, (event_ts, seen_at) in enumerate(seen[warm:], start=warm):
        j = np.searchsorted(counts, i, side="right")  # the transaction that committed prediction i
        if j < len(COMMITS):
            readable.append(seen_at - ends[j])
            committed.append(ends[j] - event_ts)
    print(f"{args.rate} events/s for {args.seconds:g} s, input producer linger {args.producer_linger_ms} ms, "
          f"{len(COMMITS)} transactions")
    percentiles("record time -> the updater's poll", ARRIVALS[warm:])
    for step in ("snapshot", "offsets", "commit", "total"):
        percentiles(f"commit step: {step}", [c[step] for c in commits])
    percentiles("gap between commits", np.diff(ends[20:]))
    percentiles("record time -> its commit ends", committed)
    percentiles("commit end -> the reader sees it", readable)
    percentiles("end to end", [seen_at - event_ts for event_ts, seen_at in seen[warm:]])


if __name__ == "__main__":
    main()
