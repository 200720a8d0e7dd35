"""A bare confluent-kafka exactly-once loop, and the client set-up the benchmarks share.

:func:`bare_loop` is what a user who knows librdkafka would write instead of eventml's live
updater, with no snapshots and no metrics: a ``read_committed`` consumer assigned partition 0 of
the events topic, a transactional producer, and per event ``orjson.loads``, ``predict_proba_one``,
the most probable label, one prediction JSON in eventml's wire format produced keyed by the event
id, then ``learn_one``; the input offsets go to the transaction (``send_offsets_to_transaction``)
and it commits every ``records_per_transaction`` records. ``bench_live.py`` times it next to the
live updater; ``experiment_confluent.py`` uses the client helpers.
"""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Iterator
from typing import Any

import confluent_kafka as ck
import orjson

MODEL = "river_logreg"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def transactional_producer(servers: str, txn_id: str) -> ck.Producer:
    """A transactional producer, its transactions initialised."""
    producer = ck.Producer({"bootstrap.servers": servers, "transactional.id": txn_id, "linger.ms": 5,
                            "acks": "all", "enable.idempotence": True, "retry.backoff.ms": 20})
    # librdkafka retries a coordinator or offset lookup that finds no broker metadata yet after a fixed
    # 500 ms: fetching the metadata first makes init_transactions ~70 ms instead of ~510 ms
    producer.list_topics(timeout=10)
    producer.init_transactions(30)
    return producer


def committed_consumer(servers: str, group: str, topic: str, **config: Any) -> ck.Consumer:
    """A read_committed consumer assigned partition 0 of topic from its beginning."""
    consumer = ck.Consumer({"bootstrap.servers": servers, "group.id": group, "isolation.level": "read_committed",
                            "enable.auto.commit": False, "auto.offset.reset": "earliest", **config})
    # without the partition's leader known at assign(), the first offset lookup waits a fixed 500 ms
    consumer.list_topics(topic, timeout=10)
    consumer.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
    return consumer


def records(consumer: ck.Consumer, n: int) -> Iterator[ck.Message]:
    """n confluent-kafka messages, one at a time, across consume() batches.

    consume() returns when it has num_messages or at its timeout, so never ask for more than are left.
    """
    while n > 0:
        msgs = consumer.consume(num_messages=min(5000, n), timeout=1.0)
        n -= len(msgs)
        for msg in msgs:
            if msg.error():
                raise RuntimeError(msg.error())
            yield msg


def committed_values(servers: str, topic: str, timeout_s: float = 60.0) -> list[bytes]:
    """Every committed record value of partition 0 of topic, in offset order (read to its end)."""
    consumer = committed_consumer(servers, unique("bench-check"), topic, **{"enable.partition.eof": True})
    values = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=5000, timeout=1.0):
                error = msg.error()
                if error is None:
                    values.append(msg.value())
                elif error.code() == ck.KafkaError._PARTITION_EOF:
                    return values
                else:
                    raise RuntimeError(error)
        raise TimeoutError(f"{topic}: not read to its end within {timeout_s:g} s ({len(values)} records)")
    finally:
        consumer.close()


def bare_loop(servers: str, topic: str, out: str, n: int, model: Any, *, mark: int,
              records_per_transaction: int = 10_000) -> dict[str, float]:
    """Predict then learn n events of ``topic`` with ``model`` (a river classifier), exactly once.

    Returns wall-clock times (epoch seconds): ``started_at`` (called), ``marked_at`` (the ``mark``-th
    event processed) and ``ended_at`` (the last commit done and the consumer closed). Python's garbage
    collector leaves the objects that exist at the start out of its collections, as the live updater
    does (``gc.freeze``).
    """
    started_at = time.time()
    producer = transactional_producer(servers, unique("bench-bare"))
    consumer = committed_consumer(servers, unique("bench-bare"), topic)
    predict, learn = model.predict_proba_one, model.learn_one
    loads, dumps, produce, now = orjson.loads, orjson.dumps, producer.produce, time.time
    events = learned = 0
    marked_at = None
    stream = records(consumer, n)
    gc.freeze()
    try:
        while events < n:
            producer.begin_transaction()
            for _ in range(min(records_per_transaction, n - events)):
                msg = next(stream)
                value = loads(msg.value())
                x, y, ts = value["features"], value.get("label"), value.get("ts")
                proba = predict(x)
                label = max(proba, key=proba.get) if proba else None
                produce(out, dumps({"id": value["id"], "prediction": label,
                                    "proba": {str(k): p for k, p in proba.items()}, "model": MODEL,
                                    "model_version": learned,
                                    "event_ts": msg.timestamp()[1] / 1000.0 if ts is None else ts, "ts": now()}),
                        msg.key(), partition=0)
                if y is not None:
                    learn(x, y)
                    learned += 1
                events += 1
                if events == mark:
                    marked_at = now()
            producer.send_offsets_to_transaction([ck.TopicPartition(topic, 0, msg.offset() + 1)],
                                                 consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
    finally:
        gc.unfreeze()
    consumer.close()
    return {"started_at": started_at, "marked_at": marked_at, "ended_at": time.time()}
