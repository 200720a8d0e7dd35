"""eventml's producer and consumer against raw kafka-python, side by side, in one run.

For each round, the same events are produced to fresh topics by:

- ``raw_default``: a default-configured ``KafkaProducer`` with a ``json.dumps`` serializer, the
  way the kafka-python README starts;
- ``raw_same``: a ``KafkaProducer`` with eventml's settings and the same orjson encoding;
- ``eventml``: :func:`eventml.produce`, which also validates every event.

and read back by a default ``KafkaConsumer`` with ``json.loads``, by a ``KafkaConsumer`` with
eventml's settings and orjson, and by :func:`eventml.read_events` (which validates and would
dead-letter). Events/s are medians over the rounds; ratios are eventml / baseline.

Then what eventml's durable default costs: :class:`eventml.EventProducer` with ``acks=1`` against
its defaults (``acks="all"`` with idempotence), in alternating order, at full speed (events/s) and
paced at ``--paced-rate`` for 3 s (the delivery latency of every event, send to acknowledgement,
p50 and p99); ratios are acks=all / acks=1, the median over the rounds of each round's pair (and
their range). With ``--cluster`` the same comparison runs on a fresh local three-broker cluster too
(replication factor 3, ``min.insync.replicas=2``), where acks=all waits for a follower.

Usage::

    python benchmarks/bench_produce_consume.py --events 100000 --rounds 3
    python benchmarks/bench_produce_consume.py --events 50000 --rounds 3 --acks-only --cluster
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import uuid
from pathlib import Path

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import eventml as em
from eventml.kafka import CONSUMER_DEFAULTS, PRODUCER_DEFAULTS, LocalCluster, kafka_for
from eventml.sources import rate_limited

HERE = Path(__file__).resolve().parent


def produce_raw_default(events, topic, servers):
    producer = KafkaProducer(bootstrap_servers=servers, value_serializer=lambda v: json.dumps(v).encode(),
                             key_serializer=str.encode)
    started = time.perf_counter()
    for event in events:
        producer.send(topic, value=event.to_dict(), key=event.id)
    producer.flush()
    seconds = time.perf_counter() - started
    producer.close()
    return seconds


def produce_raw_same(events, topic, servers):
    producer = KafkaProducer(bootstrap_servers=servers, **PRODUCER_DEFAULTS)
    started = time.perf_counter()
    for event in events:
        producer.send(topic, value=orjson.dumps(event.to_dict()), key=event.id.encode())
    producer.flush()
    seconds = time.perf_counter() - started
    producer.close()
    return seconds


def produce_eventml(events, topic, servers):
    with em.producer.EventProducer(topic, bootstrap_servers=servers) as producer:
        started = time.perf_counter()
        for event in events:
            producer.send(event)
        producer.flush()
        seconds = time.perf_counter() - started
    assert producer.report.delivered == len(events)
    return seconds


def _drain(consumer, topic, n, decode):
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    started = time.perf_counter()
    got = 0
    while got < n:
        for records in consumer.poll(timeout_ms=1000).values():
            for record in records:
                decode(record.value)
                got += 1
    seconds = time.perf_counter() - started
    consumer.close()
    return seconds


def consume_raw_default(topic, n, servers):
    return _drain(KafkaConsumer(bootstrap_servers=servers), topic, n, json.loads)


def consume_raw_same(topic, n, servers):
    return _drain(KafkaConsumer(bootstrap_servers=servers, **CONSUMER_DEFAULTS), topic, n, orjson.loads)


def consume_eventml(topic, n, servers):
    with em.replay(topic, bootstrap_servers=servers) as consumer:
        started = time.perf_counter()
        got = sum(1 for _ in consumer)
        seconds = time.perf_counter() - started
    assert got == n
    return seconds


PRODUCERS = {"raw_default": produce_raw_default, "raw_same": produce_raw_same, "eventml": produce_eventml}
CONSUMERS = {"raw_default": consume_raw_default, "raw_same": consume_raw_same, "eventml": consume_eventml}


def run(servers: str, n: int, rounds: int) -> dict:
    events = list(em.synthetic("sea", n, seed=1))
    produce = {name: [] for name in PRODUCERS}
    consume = {name: [] for name in CONSUMERS}
    names = list(PRODUCERS)
    for round_ in range(rounds):
        order = names[round_ % 3:] + names[:round_ % 3]  # rotate so no variant always goes first
        topic = None
        for name in order:
            topic = f"bench-{name}-{uuid.uuid4().hex[:6]}"
            em.create_topic(topic, bootstrap_servers=servers)
            produce[name].append(n / PRODUCERS[name](events, topic, servers))
        for name in order:
            consume[name].append(n / CONSUMERS[name](topic, n, servers))
        print(f"round {round_ + 1}: produce {_fmt(produce, -1)} | consume {_fmt(consume, -1)}")
    p = {k: statistics.median(v) for k, v in produce.items()}
    c = {k: statistics.median(v) for k, v in consume.items()}
    return {
        **{f"produce_{k}_events_per_s": round(v) for k, v in p.items()},
        **{f"consume_{k}_events_per_s": round(v) for k, v in c.items()},
        "produce_ratio_vs_raw_same": round(p["eventml"] / p["raw_same"], 3),
        "produce_ratio_vs_raw_default": round(p["eventml"] / p["raw_default"], 3),
        "consume_ratio_vs_raw_same": round(c["eventml"] / c["raw_same"], 3),
        "consume_ratio_vs_raw_default": round(c["eventml"] / c["raw_default"], 3),
    }


#: the two durability settings compared: eventml's defaults (acks=all, idempotence) and acks=1
ACKS = {"acks_all": {}, "acks_1": {"acks": 1}}
PACED_S = 3  # seconds of each latency run


def produce_acks(events, topic, servers, config, rate=None):
    """Seconds to produce and flush ``events`` with ``config`` over eventml's defaults; paced at
    ``rate``, the delivery latency (ms, send to acknowledgement) of every event too."""
    latencies = []
    with em.producer.EventProducer(topic, bootstrap_servers=servers, **config) as producer:
        started = time.perf_counter()
        for event in rate_limited(events, rate):
            future = producer.send(event)
            if rate is not None:
                sent = time.perf_counter()
                future.add_callback(lambda _, sent=sent: latencies.append((time.perf_counter() - sent) * 1000))
        producer.flush()
        seconds = time.perf_counter() - started
    assert producer.report.delivered == len(events), producer.report
    return seconds, latencies


def compare_acks(servers: str, n: int, rounds: int, paced_rate: float, where: str) -> dict:
    """acks=1 and acks=all+idempotence side by side on ``servers``, alternating which goes first."""
    events = list(em.synthetic("sea", n, seed=1))
    paced = events[:max(1, int(paced_rate * PACED_S))]
    rate = {name: [] for name in ACKS}
    p50 = {name: [] for name in ACKS}
    p99 = {name: [] for name in ACKS}
    names = list(ACKS)
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            topic = f"bench-{name}-{uuid.uuid4().hex[:6]}"
            em.create_topic(topic, bootstrap_servers=servers)
            rate[name].append(n / produce_acks(events, topic, servers, ACKS[name])[0])
            _, latencies = produce_acks(paced, topic, servers, ACKS[name], rate=paced_rate)
            p50[name].append(_quantile(latencies, 0.50))
            p99[name].append(_quantile(latencies, 0.99))
        print(f"{where} round {round_ + 1}: " + ", ".join(
            f"{name} {rate[name][-1]:,.0f}/s p50 {p50[name][-1]:.1f} ms p99 {p99[name][-1]:.1f} ms" for name in names))
    result = {}
    for metric, values in (("events_per_s", rate), ("paced_p50_ms", p50), ("paced_p99_ms", p99)):
        result.update({f"{where}_{name}_{metric}": round(statistics.median(v), 1) for name, v in values.items()})
        # each round's pair ran back to back: the median of their ratios, and the spread (a shared machine's noise)
        ratios = [all_ / one for all_, one in zip(values["acks_all"], values["acks_1"])]
        result[f"{where}_{metric}_ratio_all_vs_1"] = round(statistics.median(ratios), 3)
        result[f"{where}_{metric}_ratio_range"] = [round(min(ratios), 3), round(max(ratios), 3)]
    return {**result, f"{where}_paced_rate": paced_rate, f"{where}_load_average": os.getloadavg()[0]}


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _fmt(results: dict, i: int) -> str:
    return ", ".join(f"{k} {v[i]:,.0f}/s" for k, v in results.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bootstrap-servers", help="use this cluster instead of a fresh local broker")
    parser.add_argument("--acks-only", action="store_true", help="only compare acks=1 with acks=all+idempotence")
    parser.add_argument("--cluster", action="store_true", help="compare them on a local three-broker cluster too")
    parser.add_argument("--paced-rate", type=float, default=1000, help="events/s of the latency runs")
    parser.add_argument("--output", default=str(HERE / "results" / "produce_consume.json"))
    args = parser.parse_args()
    result = {"events": args.events, "rounds": args.rounds, "python": platform.python_version(),
              "kafka": em.kafka.KAFKA_VERSION, "load_average_before": os.getloadavg()}
    with kafka_for(args.bootstrap_servers) as servers:
        if not args.acks_only:
            result.update(run(servers, args.events, args.rounds))
        result.update(compare_acks(servers, args.events, args.rounds, args.paced_rate, "broker"))
    if args.cluster:
        with LocalCluster(brokers=3, port=0) as cluster:  # free ports, a temporary folder
            result.update(compare_acks(cluster.bootstrap_servers, args.events, args.rounds, args.paced_rate, "cluster"))
    result["load_average_after"] = os.getloadavg()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
