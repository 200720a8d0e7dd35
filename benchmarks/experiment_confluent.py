"""Experiment: would confluent-kafka (librdkafka) lift the live loop to half the in-memory rate?

The experiment behind the live updater's client (2026-11-24): it then ran on kafka-python, at
0.23x of in-memory prequential, and this measured confluent-kafka's loop at 0.60x, so
:mod:`eventml.live` moved to confluent-kafka (the "LiveUpdater" column is now that port). It is
kept for the same question about the rest of eventml (the producer and consumer still use
kafka-python). It measures, in one run against one real broker and on the same sea events,
kafka-python side by side with confluent-kafka:

1. **Transactional produce**: pre-encoded, prediction-sized JSON values, keyed, one partition,
   one transaction per 10,000 records. Per-record cost = wall time from the first send to the
   last commit's return, over the records; the share spent inside the send calls is reported too.
2. **read_committed consume** of the events, touching every value's bytes. Per-record cost =
   wall time from subscribing to having seen every event.
3. **A minimal live loop** (read, ``decode_event``, predict with ``make_learner("river_logreg")``
   and ``eventml.scoring.Scorer`` with accuracy and log loss over a rolling 500, encode a
   ``Prediction``, produce it, learn; transactions of up to 10,000 records closed by pickling the
   track once, ``send_offsets_to_transaction`` and a commit), written once per client with the
   same per-event work as :meth:`eventml.live.processor.RecordProcessor.event`; next to
   ``em.prequential`` in memory and :class:`eventml.live.LiveUpdater` on the same topic. The
   loop rates are steady ones, as in ``bench_live.py``: from the 10% event to the last commit.
   A fourth loop adds LiveUpdater's per-record bookkeeping (buffer, "caught up" test, offsets,
   counters, summary rows, fsynced snapshot file) to the confluent-kafka one: the rate a port
   of live.py could expect. Every loop's output is read back with ``read_committed`` (by
   kafka-python) and must hold exactly one prediction per event id.

Each round runs every variant once, in an order that alternates between rounds. Medians and
ranges are printed, as ratios, and written to ``benchmarks/results/experiment_confluent.json``.

Run it with eventml's environment (both clients are dependencies)::

    .venv/bin/python benchmarks/experiment_confluent.py --bootstrap-servers 127.0.0.1:29092

(without ``--bootstrap-servers`` a local broker is started in a temporary folder).
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import confluent_kafka as ck
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition
from kafka.structs import OffsetAndMetadata

import eventml as em
from contenders.bare_loop import committed_consumer as ck_consumer
from contenders.bare_loop import records as ck_records
from contenders.bare_loop import transactional_producer as ck_producer
from contenders.bare_loop import unique
from eventml.kafka import KafkaSettings, kafka_for
from eventml.kafka.clients import consumer_config, producer_config
from eventml.scoring import Scorer
from eventml.events import Prediction, decode_event, encode_prediction
from eventml.learners import make_learner
from eventml.live import LiveUpdater, read_predictions

MODEL = "river_logreg"
METRICS = ["accuracy", "log_loss"]
ROLLING = 500
TXN = 10_000


# ----------------------------------------------------------------------------- clients, as live.py sets them up


def kp_producer(servers: str, txn_id: str) -> KafkaProducer:
    """kafka-python, configured like LiveUpdater._connect."""
    producer = KafkaProducer(**producer_config(
        KafkaSettings(servers), transactional_id=txn_id, acks="all", linger_ms=5, retry_backoff_ms=20, retries=2**31 - 1,
        max_in_flight_requests_per_connection=5, reconnect_backoff_max_ms=1000))
    producer.init_transactions()
    return producer


def kp_consumer(servers: str, group: str | None) -> KafkaConsumer:
    return KafkaConsumer(**consumer_config(KafkaSettings(servers), group_id=group, isolation_level="read_committed",
                                           enable_auto_commit=False, reconnect_backoff_max_ms=1000))


# ----------------------------------------------------------------------------- 1. transactional produce


def produce_kp(servers, topic, values, keys):
    producer = kp_producer(servers, unique("exp-kp-produce"))
    in_send = 0.0
    started, cpu = time.perf_counter(), time.thread_time()
    for start in range(0, len(values), TXN):
        producer.begin_transaction()
        t = time.perf_counter()
        for i in range(start, min(start + TXN, len(values))):
            producer.send(topic, value=values[i], key=keys[i], partition=0)
        in_send += time.perf_counter() - t
        producer.commit_transaction()
    elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
    producer.close()
    return elapsed, in_send, cpu


def produce_ck(servers, topic, values, keys):
    producer = ck_producer(servers, unique("exp-ck-produce"))
    in_send = 0.0
    started, cpu = time.perf_counter(), time.thread_time()
    for start in range(0, len(values), TXN):
        producer.begin_transaction()
        t = time.perf_counter()
        for i in range(start, min(start + TXN, len(values))):
            producer.produce(topic, value=values[i], key=keys[i], partition=0)
        in_send += time.perf_counter() - t
        producer.commit_transaction(30)
    elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
    return elapsed, in_send, cpu


# ----------------------------------------------------------------------------- 2. read_committed consume


def consume_kp(servers, topic, n):
    started, cpu = time.perf_counter(), time.thread_time()
    consumer = kp_consumer(servers, None)
    tp = KTopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    seen = size = 0
    while seen < n:
        for records in consumer.poll(timeout_ms=1000).values():
            for record in records:
                size += len(record.value)
                seen += 1
    ended, cpu = time.perf_counter(), time.thread_time() - cpu
    consumer.close()
    return ended - started, cpu, size


def consume_ck(servers, topic, n):
    started, cpu = time.perf_counter(), time.thread_time()
    consumer = ck_consumer(servers, unique("exp-ck-consume"), topic)
    seen = size = 0
    while seen < n:
        msgs = consumer.consume(num_messages=min(5000, n - seen), timeout=1.0)
        for msg in msgs:
            if msg.error():
                raise RuntimeError(msg.error())
            size += len(msg.value())
            seen += 1
    ended, cpu = time.perf_counter(), time.thread_time() - cpu
    consumer.close()
    return ended - started, cpu, size


# ----------------------------------------------------------------------------- 3. minimal live loops


def kp_records(consumer, tp):
    """kafka-python records, one at a time, across polls."""
    while True:
        yield from consumer.poll(timeout_ms=1000).get(tp, ())


def loop_kp(servers, topic, out, n):
    """The per-event work of eventml.live.processor.RecordProcessor.event, on kafka-python's public transaction API."""
    learner = make_learner(MODEL, seed=42)
    started, cpu = time.perf_counter(), time.process_time()
    producer = kp_producer(servers, unique("exp-kp-loop"))
    consumer = kp_consumer(servers, unique("exp-kp-loop"))
    tp = KTopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    track = Scorer(learner.clone(), METRICS, ROLLING)
    events = learned = 0
    mark_at, marked = n // 10, None
    timestamps = []
    send = producer.send
    records = kp_records(consumer, tp)
    gc.freeze()
    try:
        while events < n:
            for i in range(min(TXN, n - events)):
                record = next(records)
                if i == 0:
                    producer.begin_transaction()
                event = decode_event(record.value, record.timestamp / 1000.0)
                x, y = event.features, event.label
                label, proba = track.predict(x)
                prediction = Prediction(event.id, label, learner.name, learned, proba, event.ts, time.time())
                send(out, value=encode_prediction(prediction), key=record.key or event.id.encode(), partition=0)
                events += 1
                timestamps.append(record.timestamp)
                if y is not None:
                    track.update(y, label, proba)
                    track.learner.learn_one(x, y)
                    learned += 1
                if events == mark_at:
                    marked = time.perf_counter()
            pickle.dumps(track)  # the snapshot, once per transaction
            offsets = {tp: OffsetAndMetadata(record.offset + 1, "", -1)}
            producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
            producer.commit_transaction()
    finally:
        gc.unfreeze()
    ended = time.perf_counter()
    consumer.close(autocommit=False)
    producer.close()
    return {"steady": (n - mark_at) / (ended - marked), "wall": n / (ended - started),
            "cpu_us": (time.process_time() - cpu) / n * 1e6, "accuracy": track.cumulative[0].get()}


def loop_ck(servers, topic, out, n):
    """The same loop on confluent-kafka."""
    learner = make_learner(MODEL, seed=42)
    started, cpu = time.perf_counter(), time.process_time()
    producer = ck_producer(servers, unique("exp-ck-loop"))
    consumer = ck_consumer(servers, unique("exp-ck-loop"), topic)
    track = Scorer(learner.clone(), METRICS, ROLLING)
    events = learned = 0
    mark_at, marked = n // 10, None
    timestamps = []
    produce = producer.produce
    records = ck_records(consumer, n)
    gc.freeze()
    try:
        while events < n:
            for i in range(min(TXN, n - events)):
                msg = next(records)
                if i == 0:
                    producer.begin_transaction()
                ts = msg.timestamp()[1]
                event = decode_event(msg.value(), ts / 1000.0)
                x, y = event.features, event.label
                label, proba = track.predict(x)
                prediction = Prediction(event.id, label, learner.name, learned, proba, event.ts, time.time())
                produce(out, value=encode_prediction(prediction), key=msg.key() or event.id.encode(), partition=0)
                events += 1
                timestamps.append(ts)
                if y is not None:
                    track.update(y, label, proba)
                    track.learner.learn_one(x, y)
                    learned += 1
                if events == mark_at:
                    marked = time.perf_counter()
            pickle.dumps(track)  # the snapshot, once per transaction
            offsets = [ck.TopicPartition(topic, 0, msg.offset() + 1)]
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
    finally:
        gc.unfreeze()
    ended = time.perf_counter()
    consumer.close()
    return {"steady": (n - mark_at) / (ended - marked), "wall": n / (ended - started),
            "cpu_us": (time.process_time() - cpu) / n * 1e6, "accuracy": track.cumulative[0].get()}


def loop_ck_full(servers, topic, out, n, folder):
    """The confluent-kafka loop with LiveUpdater's per-record bookkeeping: what a port would run.

    Added to :func:`loop_ck`, as live.py does them: the record buffer and the "caught up" test after
    every record (position and cached high watermark, which live.py takes from kafka-python), the
    offsets dict, the counters of ``UpdaterState``, a summary row every 500 events (with the lag), and the
    snapshot file (``eventml.live.snapshots.write_snapshot``, fsynced) before each commit.
    """
    import collections

    from eventml.live.snapshots import prune_snapshots, write_snapshot
    from eventml.live.state import UpdaterState

    state_dir = folder / unique("ckfull")
    learner = make_learner(MODEL, seed=42)
    started, cpu = time.perf_counter(), time.process_time()
    producer = ck_producer(servers, unique("exp-ckfull-loop"))
    consumer = ck_consumer(servers, unique("exp-ckfull-loop"), topic)
    tp = ck.TopicPartition(topic, 0)
    state = UpdaterState.fresh(learner, METRICS, ROLLING)
    counts, track = state.counts, state.scorer
    buf = collections.deque()
    mark_at, marked = n // 10, None

    def lag():
        return max(0, consumer.get_watermark_offsets(tp, cached=True)[1] - state.offsets.get(f"{topic}:0", 0))

    def caught_up():
        return not buf and consumer.position([tp])[0].offset >= consumer.get_watermark_offsets(tp, cached=True)[1]

    gc.freeze()
    try:
        while counts["events"] < n:
            timestamps = []
            began = False
            records = 0
            while records < TXN and counts["events"] < n:
                if not buf:
                    buf.extend(consumer.consume(num_messages=min(5000, n - counts["events"]), timeout=0.1))
                    if not buf:
                        continue
                msg = buf.popleft()
                if msg.error():
                    raise RuntimeError(msg.error())
                if not began:
                    producer.begin_transaction()
                    began = True
                state.offsets[f"{msg.topic()}:{msg.partition()}"] = msg.offset() + 1
                ts = msg.timestamp()[1]
                event = decode_event(msg.value(), ts / 1000.0)
                x, y = event.features, event.label
                label, proba = track.predict(x)
                prediction = Prediction(event.id, label, learner.name, counts["learned"], proba, event.ts, time.time())
                producer.produce(out, value=encode_prediction(prediction), key=msg.key() or event.id.encode(),
                                 partition=0)
                counts["events"] += 1
                timestamps.append(ts)
                if y is not None:
                    track.update(y, label, proba)
                    track.learner.learn_one(x, y)
                    counts["learned"] += 1
                if counts["events"] % 500 == 0:
                    row = {"events": counts["events"], "labelled": counts["learned"]}
                    for name, metric in zip(track.names, track.cumulative):
                        row[name] = metric.get()
                    for name, metric in zip(track.names, track.rolling):
                        row[f"rolling_{name}"] = metric.get()
                    row.update(dead_letters=counts["dead_letters"], lag=lag(), time=time.time())
                    state.rows.append(row)
                records += 1
                if counts["events"] == mark_at:
                    marked = time.perf_counter()
                if caught_up():
                    break
            if began:
                state.sequence += 1
                path = write_snapshot(state_dir, state.sequence, state.offsets, state)
                offsets = [ck.TopicPartition(topic, 0, state.offsets[f"{topic}:0"])]
                producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
                producer.commit_transaction(30)
                prune_snapshots(state_dir, keep=path)
    finally:
        gc.unfreeze()
    ended = time.perf_counter()
    consumer.close()
    return {"steady": (n - mark_at) / (ended - marked), "wall": n / (ended - started),
            "cpu_us": (time.process_time() - cpu) / n * 1e6, "accuracy": track.cumulative[0].get(),
            "transactions": state.sequence}


def loop_live(servers, topic, out, n, folder):
    """eventml.live.LiveUpdater as bench_live.py runs it."""
    updater = LiveUpdater(topic, out, model=MODEL, state_dir=folder / unique("live"), bootstrap_servers=servers,
                          max_events=n, summary_every=500)
    started, cpu = time.perf_counter(), time.process_time()
    updater.run()
    wall = n / (time.perf_counter() - started)
    cpu_us = (time.process_time() - cpu) / n * 1e6
    summary = updater.summary()
    rows = summary[summary["events"] >= summary["events"].iloc[-1] * 0.1]
    first, last = rows.iloc[0], rows.iloc[-1]
    steady = (last["events"] - first["events"]) / (last["time"] - first["time"])
    return {"steady": steady, "wall": wall, "cpu_us": cpu_us, "accuracy": float(summary["accuracy"].iloc[-1])}


def check_output(servers, out, ids):
    """Exactly one committed prediction per event id."""
    predictions = read_predictions(out, bootstrap_servers=servers, idle_timeout_s=5)
    got = list(predictions["id"])
    ok = len(got) == len(ids) and set(got) == set(ids)
    return len(got), ok


# ----------------------------------------------------------------------------- main


def median_range(values):
    return statistics.median(values), min(values), max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "experiment_confluent.json"))
    args = parser.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory() as tmp, kafka_for(args.bootstrap_servers) as servers:
        folder = Path(tmp)
        events = list(em.synthetic("sea", n, seed=1))
        ids = [e.id for e in events]
        topic = unique("exp-ck-events")
        em.recreate_topic(topic, bootstrap_servers=servers)
        em.produce(events, topic, bootstrap_servers=servers, progress=False)
        # prediction-sized values: what the live loop publishes for these events
        values = [encode_prediction(Prediction(e.id, 1, MODEL, i, {0: 0.25, 1: 0.75}, e.ts, time.time()))
                  for i, e in enumerate(events)]
        keys = [e.id.encode() for e in events]
        # warm-up, left out: the broker's one-time set-up of the transaction and offsets topics,
        # and each client's first connection
        for loop in (loop_kp, loop_ck):
            warm = unique("exp-warmup")
            em.recreate_topic(warm, bootstrap_servers=servers)
            loop(servers, topic, warm, min(n, 1000))
        rows = []
        for r in range(args.rounds):
            row = {}
            flip = r % 2 == 1
            # 1. produce
            for name in (["ck", "kp"] if flip else ["kp", "ck"]):
                out = unique(f"exp-produce-{name}")
                em.recreate_topic(out, bootstrap_servers=servers)
                elapsed, in_send, cpu = (produce_ck if name == "ck" else produce_kp)(servers, out, values, keys)
                row[f"produce_{name}_us"] = elapsed / n * 1e6
                row[f"produce_{name}_send_us"] = in_send / n * 1e6
                row[f"produce_{name}_cpu_us"] = cpu / n * 1e6
            # 2. consume
            for name in (["ck", "kp"] if flip else ["kp", "ck"]):
                elapsed, cpu, size = (consume_ck if name == "ck" else consume_kp)(servers, topic, n)
                row[f"consume_{name}_us"] = elapsed / n * 1e6
                row[f"consume_{name}_cpu_us"] = cpu / n * 1e6
                row["consume_bytes"] = size
            # 3. loops
            order = ["prequential", "kp", "ck", "ckfull", "live"]
            for name in (order[::-1] if flip else order):
                if name == "prequential":
                    started = time.perf_counter()
                    result = em.prequential(events, MODEL, metrics=METRICS, rolling_window=ROLLING,
                                            measure_memory=False)
                    row["prequential"] = n / (time.perf_counter() - started)
                    row["prequential_accuracy"] = float(result["accuracy"].iloc[-1])
                    continue
                out = unique(f"exp-loop-{name}")
                em.recreate_topic(out, bootstrap_servers=servers)
                if name == "live":
                    got = loop_live(servers, topic, out, n, folder)
                elif name == "ckfull":
                    got = loop_ck_full(servers, topic, out, n, folder)
                else:
                    got = (loop_ck if name == "ck" else loop_kp)(servers, topic, out, n)
                count, ok = check_output(servers, out, ids)
                row[f"loop_{name}"] = got["steady"]
                row[f"loop_{name}_wall"] = got["wall"]
                row[f"loop_{name}_cpu_us"] = got["cpu_us"]
                if "transactions" in got:
                    row[f"loop_{name}_transactions"] = got["transactions"]
                row[f"loop_{name}_accuracy"] = got["accuracy"]
                row[f"loop_{name}_predictions"] = count
                row[f"loop_{name}_exactly_once"] = ok
            rows.append(row)
            print(f"round {r + 1}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                for k, v in row.items()), flush=True)

    def stat(key):
        return median_range([row[key] for row in rows])

    def ratio(a, b):
        return median_range([row[a] / row[b] for row in rows])

    result = {
        "events": n, "rounds": args.rounds, "model": MODEL, "metrics": METRICS, "records_per_transaction": TXN,
        "confluent_kafka": ck.__version__, "librdkafka": ck.libversion()[0], "rows": rows,
    }
    lines = [f"{n} sea events, {args.rounds} rounds, median (min-max); "
             f"confluent-kafka {ck.__version__} / librdkafka {ck.libversion()[0]} vs kafka-python 3.0.12", ""]
    lines.append(f"{'':44} {'kafka-python':>22} {'confluent-kafka':>22} {'kp/ck':>18}")

    def table_row(label, kp_key, ck_key, fmt):
        kp, ckv, r = stat(kp_key), stat(ck_key), ratio(kp_key, ck_key)
        result[kp_key], result[ck_key] = kp, ckv
        result[f"{kp_key}_over_{ck_key}"] = r
        cell = lambda v: f"{v[0]:{fmt}} ({v[1]:{fmt}}-{v[2]:{fmt}})"
        lines.append(f"{label:44} {cell(kp):>22} {cell(ckv):>22} {r[0]:>5.2f} ({r[1]:.2f}-{r[2]:.2f})")

    table_row("1. txn produce, us/record, wall to commit", "produce_kp_us", "produce_ck_us", ".2f")
    table_row("   calling thread's CPU, us/record", "produce_kp_cpu_us", "produce_ck_cpu_us", ".2f")
    table_row("   wall inside send()/produce(), us/record", "produce_kp_send_us", "produce_ck_send_us", ".2f")
    table_row("2. read_committed consume, us/record, wall", "consume_kp_us", "consume_ck_us", ".2f")
    table_row("   calling thread's CPU, us/record", "consume_kp_cpu_us", "consume_ck_cpu_us", ".2f")
    table_row("3. minimal live loop, steady events/s", "loop_kp", "loop_ck", ".0f")
    table_row("   same, wall incl. connect, events/s", "loop_kp_wall", "loop_ck_wall", ".0f")
    table_row("   process CPU (all threads), us/event", "loop_kp_cpu_us", "loop_ck_cpu_us", ".1f")
    lines.append("")
    pre = stat("prequential")
    result["prequential"] = pre
    lines.append(f"in-memory prequential: {pre[0]:.0f} events/s ({pre[1]:.0f}-{pre[2]:.0f})")
    live = stat("loop_live")
    result["loop_live"] = live
    lines.append(f"eventml LiveUpdater (kafka-python), steady: {live[0]:.0f} events/s ({live[1]:.0f}-{live[2]:.0f})")
    live_cpu = stat("loop_live_cpu_us")
    result["loop_live_cpu_us"] = live_cpu
    lines.append(f"   process CPU (all threads): {live_cpu[0]:.1f} us/event ({live_cpu[1]:.1f}-{live_cpu[2]:.1f})")
    lines.append("")
    full = stat("loop_ckfull")
    full_cpu = stat("loop_ckfull_cpu_us")
    result["loop_ckfull"], result["loop_ckfull_cpu_us"] = full, full_cpu
    txns = sorted({row["loop_ckfull_transactions"] for row in rows})
    lines.append(f"confluent-kafka loop + LiveUpdater's bookkeeping, steady: {full[0]:.0f} events/s "
                 f"({full[1]:.0f}-{full[2]:.0f}); process CPU {full_cpu[0]:.1f} us/event; transactions {txns}")
    lines.append("")
    for label, key in (("minimal loop, confluent-kafka", "loop_ck"), ("confluent-kafka + bookkeeping", "loop_ckfull"),
                       ("minimal loop, kafka-python", "loop_kp"), ("LiveUpdater", "loop_live")):
        r1, r2 = ratio(key, "prequential"), ratio(key, "loop_live")
        result[f"{key}_over_prequential"], result[f"{key}_over_live"] = r1, r2
        lines.append(f"{label:32} / prequential {r1[0]:.3f} ({r1[1]:.3f}-{r1[2]:.3f})   "
                     f"/ LiveUpdater {r2[0]:.2f} ({r2[1]:.2f}-{r2[2]:.2f})")
    lines.append("")
    for name in ("kp", "ck", "ckfull", "live"):
        counts = sorted({row[f"loop_{name}_predictions"] for row in rows})
        once = all(row[f"loop_{name}_exactly_once"] for row in rows)
        same = all(row[f"loop_{name}_accuracy"] == row["prequential_accuracy"] for row in rows)
        result[f"loop_{name}_exactly_once"] = once
        result[f"loop_{name}_accuracy_equals_prequential"] = same
        lines.append(f"loop {name:4}: committed predictions {counts}, one per event id: {once}; "
                     f"final accuracy equal to prequential's: {same}")
    print("\n" + "\n".join(lines))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
