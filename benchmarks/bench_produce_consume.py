"""eventml's producer and consumer against raw kafka-python, side by side, in one run.

For each round, the same events are produced to fresh topics by:

- ``raw_default``: a default-configured ``KafkaProducer`` with a ``json.dumps`` serializer, the
  way the kafka-python README starts;
- ``raw_same``: a ``KafkaProducer`` with eventml's settings and the same orjson encoding;
- ``eventml``: :func:`eventml.produce`, which also validates every event.

and read back by a default ``KafkaConsumer`` with ``json.loads``, by a ``KafkaConsumer`` with
eventml's settings and orjson, and by :func:`eventml.read_events` (which validates and would
dead-letter). Events/s are medians over the rounds; ratios are eventml / baseline.

Usage::

    python benchmarks/bench_produce_consume.py --events 100000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import uuid
from pathlib import Path

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import eventml as em
from eventml.kafka import CONSUMER_DEFAULTS, PRODUCER_DEFAULTS, kafka_for

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
    with em.EventProducer(topic, bootstrap_servers=servers) as producer:
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
        "events": n, "rounds": rounds, "python": platform.python_version(), "kafka": em.kafka.KAFKA_VERSION,
        **{f"produce_{k}_events_per_s": round(v) for k, v in p.items()},
        **{f"consume_{k}_events_per_s": round(v) for k, v in c.items()},
        "produce_ratio_vs_raw_same": round(p["eventml"] / p["raw_same"], 3),
        "produce_ratio_vs_raw_default": round(p["eventml"] / p["raw_default"], 3),
        "consume_ratio_vs_raw_same": round(c["eventml"] / c["raw_same"], 3),
        "consume_ratio_vs_raw_default": round(c["eventml"] / c["raw_default"], 3),
    }


def _fmt(results: dict, i: int) -> str:
    return ", ".join(f"{k} {v[i]:,.0f}/s" for k, v in results.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bootstrap-servers", help="use this cluster instead of a fresh local broker")
    parser.add_argument("--output", default=str(HERE / "results" / "produce_consume.json"))
    args = parser.parse_args()
    with kafka_for(args.bootstrap_servers) as servers:
        result = run(servers, args.events, args.rounds)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
