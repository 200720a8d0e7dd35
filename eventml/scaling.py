"""Scale-out experiments on a group of live updaters: where Kafka puts a keyed event, how much accuracy
one model per partition gives up against one global model, updater processes, who owned which
partition when, and a group's throughput.

A group of ``eventml live --group`` updaters keeps one model per events partition
(:mod:`eventml.live.group`). Which partition an event lands in is Kafka's choice: the default
partitioner of every official client sends a keyed record to ``murmur2(key) % partitions``
(:func:`kafka_partition`), and eventml keys an event by its id. So the model that predicts an
event, and the events it learned from, follow from the id alone, and :func:`partition_sweep`
replays exactly what a group of updaters would learn, for any number of partitions, without Kafka.

Examples
--------
>>> import eventml as em
>>> kafka_partition("e-42", 6)
5
>>> sweep = partition_sweep(em.synthetic("sea", 3000, seed=1), partition_counts=[1, 6])
>>> for row in sweep.itertuples():
...     print(f"{row.partitions} partitions: accuracy {row.accuracy:.4f}, {row.gap:.4f} below one model")
1 partitions: accuracy 0.9757, 0.0000 below one model
6 partitions: accuracy 0.9463, 0.0293 below one model
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from eventml.errors import ConfigError, EventmlError
from eventml.events import Event
from eventml.learners import make_learner
from eventml.scoring import Scorer
from eventml.validation import positive_int

__all__ = ["kafka_partition", "partition_sweep", "prediction_accuracy", "count_predictions", "updater_command",
           "start_updater", "wait_until_assigned", "delete_group_topics", "produce_at_once", "ownership",
           "partition_moves", "group_throughput"]

_NO_PREDICTION: dict = {}


# ----------------------------------------------------------------------------- where an event goes


def kafka_partition(key: str | bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a record with ``key`` in a topic of ``partitions``
    partitions: ``toPositive(murmur2(key)) % partitions``, as the Java client, librdkafka's
    ``murmur2_random`` and kafka-python do (:func:`eventml.kafka.partitioner.partition_for_key`).

    Examples
    --------
    >>> [kafka_partition(f"e-{i}", 4) for i in range(6)]
    [1, 3, 2, 2, 3, 2]
    """
    from eventml.kafka.partitioner import partition_for_key

    return partition_for_key(key.encode() if isinstance(key, str) else bytes(key), partitions)


def partition_sweep(events: Iterable[Event], partition_counts: Sequence[int] = (1, 2, 4, 6, 12),
                    model: Any = "river_logreg", *, seed: int | None = 42, rolling_window: int = 500,
                    by_partition: bool = False) -> pd.DataFrame:
    """Test-then-train accuracy of one model per partition, for each number of partitions, on one stream.

    Each event goes to partition :func:`kafka_partition` ``(event.id, k)``; each partition has its own
    model (a fresh ``model`` made with ``seed``, as a group updater makes it), which predicts the
    partition's events in stream order and learns each label at once, through eventml's
    :class:`~eventml.scoring.Scorer` (river's metrics). With ``k = 1`` it is the global model, equal to
    :func:`eventml.prequential` on the same events.

    Returns one row per count: ``partitions``, ``events``, ``scored`` (predictions scored, over every
    partition), ``accuracy`` (over every scored prediction: what the group's predictions score),
    ``global_accuracy`` (one model, ``k = 1``), ``gap`` (global minus per-partition accuracy),
    ``partition_accuracy_min`` and ``_max`` (the worst and best partition), and
    ``events_per_model_min`` (the events of the smallest partition). With ``by_partition=True``, one
    row per count and partition instead: ``partitions``, ``partition``, ``events``, ``accuracy``.
    """
    counts = [positive_int("partition count", k) for k in partition_counts]
    if not counts or len(set(counts)) != len(counts):
        raise ConfigError(f"partition_counts must be distinct positive integers, got {list(partition_counts)!r}")
    from river import metrics as river_metrics

    events = list(events)
    runs = sorted(set(counts) | {1})
    rows, partition_rows = {}, []
    for k in runs:
        scorers = [Scorer(make_learner(model, seed=seed), ["accuracy"], rolling_window) for _ in range(k)]
        seen = [0] * k
        pooled = river_metrics.Accuracy()
        for event in events:
            p = kafka_partition(event.id, k) if k > 1 else 0
            scorer = scorers[p]
            seen[p] += 1
            label, proba = scorer.predict(event.features)
            if event.label is not None:
                scorer.update(event.label, label, proba)
                if label is not None and label != _NO_PREDICTION:  # as Scorer.update skips "no prediction yet"
                    pooled.update(event.label, label)
                scorer.learn(event.id, event.features, event.label)
        parts = [{"partitions": k, "partition": p, "events": seen[p],
                  "accuracy": scorers[p].metrics()["accuracy"] if seen[p] else None} for p in range(k)]
        partition_rows.extend(parts)
        accuracies = [row["accuracy"] for row in parts if row["accuracy"] is not None]
        rows[k] = {"partitions": k, "events": len(events), "scored": int(pooled.cm.n_samples),
                   "accuracy": pooled.get(), "partition_accuracy_min": min(accuracies, default=None),
                   "partition_accuracy_max": max(accuracies, default=None), "events_per_model_min": min(seen)}
    if by_partition:
        return pd.DataFrame([row for row in partition_rows if row["partitions"] in counts])
    global_accuracy = rows[1]["accuracy"]
    df = pd.DataFrame([{**rows[k], "global_accuracy": global_accuracy, "gap": global_accuracy - rows[k]["accuracy"]}
                       for k in counts])
    df = df[["partitions", "events", "scored", "accuracy", "global_accuracy", "gap", "partition_accuracy_min",
             "partition_accuracy_max", "events_per_model_min"]]
    return df


def prediction_accuracy(predictions: pd.DataFrame, events: Iterable[Event]) -> float | None:
    """The share of ``predictions`` (from :func:`eventml.read_predictions`) equal to their event's label,
    over the predictions that predicted something and whose event has a label (as river scores them).

    Examples
    --------
    >>> predictions = pd.DataFrame({"id": ["a", "b", "c"], "prediction": [True, False, None]})
    >>> prediction_accuracy(predictions, [Event("a", {}, label=True), Event("b", {}, label=True),
    ...                                   Event("c", {}, label=False)])
    0.5
    """
    labels = {event.id: event.label for event in events}
    scored = [(p, labels[i]) for i, p in zip(predictions["id"], predictions["prediction"])
              if p is not None and p == p and labels.get(i) is not None]  # p == p: not NaN
    return sum(p == y for p, y in scored) / len(scored) if scored else None


def count_predictions(predictions: pd.DataFrame, event_ids: Iterable[str]) -> dict[str, int]:
    """Exactly once, counted: ``predictions`` (committed records), ``distinct`` ids, ``duplicates``
    (records beyond the first of an id), ``missing`` (events without a prediction) and ``unexpected``
    (predictions of ids that are not events).

    Examples
    --------
    >>> count_predictions(pd.DataFrame({"id": ["a", "b", "b", "x"]}), ["a", "b", "c"])
    {'predictions': 4, 'distinct': 3, 'duplicates': 1, 'missing': 1, 'unexpected': 1}
    """
    ids = set(event_ids)
    got = set(predictions["id"])
    return {"predictions": len(predictions), "distinct": len(got), "duplicates": len(predictions) - len(got),
            "missing": len(ids - got), "unexpected": len(got - ids)}


# ----------------------------------------------------------------------------- updater processes


def updater_command(events_topic: str, predictions_topic: str, group: str, name: str, *,
                    model: str = "river_logreg", idle_timeout_s: float = 10.0, session_timeout_s: float = 6.0,
                    records_per_transaction: int | None = None) -> list[str]:
    """The ``eventml live --group`` command of one updater, run with this Python.

    Examples
    --------
    >>> updater_command("clicks", "clicks.pred", "g", "u1")[3:]
    ['live', '--events', 'clicks', '--predictions', 'clicks.pred', '--group', 'g', '--name', 'u1', '--model', \
'river_logreg', '--idle-timeout', '10', '--session-timeout', '6', '--quiet']
    """
    command = [sys.executable, "-m", "eventml.cli", "live", "--events", events_topic, "--predictions",
               predictions_topic, "--group", group, "--name", name, "--model", model,
               "--idle-timeout", f"{idle_timeout_s:g}", "--session-timeout", f"{session_timeout_s:g}", "--quiet"]
    if records_per_transaction is not None:
        command[-1:-1] = ["--records-per-transaction", str(records_per_transaction)]
    return command


def start_updater(events_topic: str, predictions_topic: str, group: str, name: str, *, bootstrap_servers: str,
                  state_key: str, log_dir: str | os.PathLike, **options: Any) -> subprocess.Popen:
    """Start one ``eventml live --group`` updater process (see :func:`updater_command` for ``options``),
    with ``EVENTML_BOOTSTRAP_SERVERS`` and ``EVENTML_STATE_KEY`` in its environment (the rest of the
    environment, security settings included, is this process's); its output goes to
    ``log_dir/<name>.log``."""
    log_path = Path(log_dir) / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "EVENTML_BOOTSTRAP_SERVERS": bootstrap_servers, "EVENTML_STATE_KEY": state_key}
    with open(log_path, "w") as log:
        process = subprocess.Popen(updater_command(events_topic, predictions_topic, group, name, **options),
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log_path = log_path  # type: ignore[attr-defined]
    return process


def _ended(process: subprocess.Popen) -> str:
    log_path = getattr(process, "log_path", None)
    tail = Path(log_path).read_text()[-2000:] if log_path and Path(log_path).exists() else ""
    return f"updater process {process.pid} ended with exit code {process.returncode}: {tail.strip() or 'no output'}"


def wait_until_assigned(group: str, names: Iterable[str], *, bootstrap_servers: str,
                        processes: Iterable[subprocess.Popen] = (), timeout_s: float = 120.0) -> pd.DataFrame:
    """Wait until each updater named in ``names`` has announced partitions in ``group``; return the
    group's assignments then (:func:`eventml.live.group.read_assignments`).

    Raises :class:`~eventml.errors.EventmlError` if one of ``processes`` ends first, or after ``timeout_s``.
    """
    from eventml.live.group import read_assignments

    names, processes = set(names), list(processes)
    deadline = time.monotonic() + timeout_s
    while True:
        rows = read_assignments(group, bootstrap_servers=bootstrap_servers, timeout_s=10)
        got = rows[(rows["event"] == "assigned") & (rows["partitions"].map(len) > 0)]
        if names <= set(got["updater"]):
            return rows
        for process in processes:
            if process.poll() is not None:
                raise EventmlError(_ended(process))
        if time.monotonic() > deadline:
            raise EventmlError(f"updaters {sorted(names - set(got['updater']))} of group {group!r} got no partition "
                               f"within {timeout_s:g} s")
        time.sleep(0.5)


def delete_group_topics(group: str, *, bootstrap_servers: str) -> list[str]:
    """Delete the topics a partition-scope group of updaters made for itself (its state and its
    assignments), once its experiment is over; return the names of those that existed."""
    from eventml.kafka.topics import delete_topic
    from eventml.live.group import assignments_topic_name, state_topic_name

    return [name for name in (state_topic_name(group), assignments_topic_name(group))
            if delete_topic(name, bootstrap_servers=bootstrap_servers)]


# ----------------------------------------------------------------------------- who owned what, when


def ownership(assignments: pd.DataFrame, end: float | None = None) -> pd.DataFrame:
    """Who owned which partition, when: one row per stretch (``partition``, ``updater``, ``start``,
    ``end``, ``ended``), from a group's announcements (:func:`eventml.live.group.read_assignments`).

    ``ended`` says how the stretch is known to end:

    - ``"revoked"``: the updater said it gave the partition up (a rebalance, or a clean stop);
    - ``"taken over"``: it said nothing, and another updater announced the partition. This is how
      an updater killed with ``kill -9`` (or cut off from Kafka) ends: it stopped working at some
      moment the announcements cannot tell, at the latest where the next owner begins;
    - ``"open"``: still owned at ``end`` (default: the last announcement).

    Examples
    --------
    >>> rows = pd.DataFrame({"time": [0.0, 1.0, 1.0, 2.0, 5.0], "updater": ["a", "a", "a", "b", "b"],
    ...                      "event": ["assigned", "revoked", "assigned", "assigned", "revoked"],
    ...                      "partitions": [[0, 1], [0, 1], [0], [1], [1]]})
    >>> ownership(rows, end=6.0).to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'partition': 0, 'updater': 'a', 'start': 0.0, 'end': 1.0, 'ended': 'revoked'},
     {'partition': 0, 'updater': 'a', 'start': 1.0, 'end': 6.0, 'ended': 'open'},
     {'partition': 1, 'updater': 'a', 'start': 0.0, 'end': 1.0, 'ended': 'revoked'},
     {'partition': 1, 'updater': 'b', 'start': 2.0, 'end': 5.0, 'ended': 'revoked'}]
    """
    columns = ["partition", "updater", "start", "end", "ended"]
    rows = assignments.sort_values("time", kind="stable")
    if end is None:
        end = float(rows["time"].max()) if len(rows) else 0.0
    open_: dict[int, tuple[str, float]] = {}  # partition -> (owner, since)
    out = []

    def close(partition: int, at: float, how: str) -> None:
        owner, since = open_.pop(partition)
        out.append({"partition": partition, "updater": owner, "start": since, "end": at, "ended": how})

    for time_, updater, event, partitions in rows[["time", "updater", "event", "partitions"]].itertuples(index=False):
        time_ = float(time_)
        partitions = [int(p) for p in partitions]
        if event == "assigned":
            for p, (owner, _) in list(open_.items()):  # an updater's new assignment replaces its old one
                if owner == updater and p not in partitions:
                    close(p, time_, "revoked")
            for p in partitions:
                if p in open_ and open_[p][0] != updater:
                    close(p, time_, "taken over")
                if p not in open_:
                    open_[p] = (updater, time_)
        elif event == "revoked":
            for p in partitions:
                if p in open_ and open_[p][0] == updater:
                    close(p, time_, "revoked")
    for p in list(open_):
        close(p, max(end, open_[p][1]), "open")
    df = pd.DataFrame(out, columns=columns)
    return df.sort_values(["partition", "start"], kind="stable").reset_index(drop=True)


def partition_moves(stretches: pd.DataFrame) -> int:
    """How many times a partition went to another updater than the one before (from :func:`ownership`).

    Examples
    --------
    >>> partition_moves(pd.DataFrame({"partition": [0, 0, 0, 1], "updater": ["a", "a", "b", "a"],
    ...                               "start": [0, 1, 2, 0]}))
    1
    """
    moves = 0
    for _, owners in stretches.sort_values(["partition", "start"], kind="stable").groupby("partition")["updater"]:
        owners = owners.tolist()
        moves += sum(a != b for a, b in zip(owners, owners[1:]))
    return moves


# ----------------------------------------------------------------------------- throughput


def _committed(topic: str, bootstrap_servers: str) -> int:
    from eventml.kafka.topics import topic_offsets

    offsets = topic_offsets(topic, bootstrap_servers=bootstrap_servers, isolation_level="read_committed")
    return sum(latest - earliest for earliest, latest in offsets.values())


def produce_at_once(events: Iterable[Event], topic: str, *, bootstrap_servers: str,
                    timeout_s: float = 120.0) -> float:
    """Write ``events`` to ``topic`` in one Kafka transaction, keyed by id and partitioned as Kafka's
    default partitioner does (murmur2), and return the time (epoch seconds) of the commit: a
    ``read_committed`` reader (a live updater) sees none of them before it and all of them after it,
    so the time a group takes to predict them is not the time it took to write them."""
    from eventml.events import encode_event
    from eventml.kafka import rdkafka
    from eventml.kafka.settings import KafkaSettings

    settings = KafkaSettings.resolve(None, bootstrap_servers=bootstrap_servers)
    producer = rdkafka.producer(settings, {"transactional.id": f"eventml-gate-{topic}-{os.getpid()}",
                                           "partitioner": "murmur2_random", "linger.ms": 20})
    producer.init_transactions(timeout_s)
    producer.begin_transaction()
    for event in events:
        while True:
            try:
                producer.produce(topic, encode_event(event), event.id.encode())
                break
            except BufferError:  # the local queue is full: let it drain
                producer.poll(0.1)
    producer.flush(timeout_s)
    producer.commit_transaction(timeout_s)
    return time.time()


def _settled(rows: pd.DataFrame, names: set[str], partitions: int) -> bool:
    """Every updater of ``names`` holds its latest assignment, and together they hold each partition once."""
    latest = rows.sort_values("time", kind="stable").groupby("updater").tail(1).set_index("updater")
    if not names <= set(latest.index) or (latest.loc[list(names), "event"] != "assigned").any():
        return False
    held = [p for name in names for p in latest.loc[name, "partitions"]]
    return sorted(held) == list(range(partitions)) and all(len(latest.loc[name, "partitions"]) for name in names)


def group_throughput(events: Sequence[Event], updaters: int, *, partitions: int, bootstrap_servers: str,
                     state_key: str, run_name: str, log_dir: str | os.PathLike, model: str = "river_logreg",
                     session_timeout_s: float = 6.0, records_per_transaction: int | None = None,
                     timeout_s: float = 600.0) -> dict[str, Any]:
    """Events per second of a group of ``updaters`` ``eventml live --group`` processes over ``events``
    in a topic of ``partitions`` partitions.

    The processes start on an empty topic ``run_name`` (group ``run_name``, predictions to
    ``<run_name>.predictions``); once every one of them holds its partitions (the group has settled),
    the events are written in one transaction (:func:`produce_at_once`), so they all appear at one
    moment; once every event's prediction is committed the processes are killed (everything they did is
    committed by then) and the run's topics deleted. Returns:

    - ``events_per_s``: the events over the time from their commit to the last prediction;
    - ``startup_s``: from starting the processes until the group settled (Python, imports, joins and
      rebalances);
    - ``predictions``, ``duplicates``, ``rebalances`` (assignment announcements), ``seconds``, and
      ``first_prediction_s`` (from the commit to the first prediction).

    Raises :class:`~eventml.errors.EventmlError` if a process fails, or does not finish within ``timeout_s``.
    """
    from eventml.consumer import read_predictions
    from eventml.kafka.topics import create_topic, delete_topic
    from eventml.live.group import read_assignments

    updaters = positive_int("updaters", updaters)
    events = list(events)
    predictions_topic = f"{run_name}.predictions"
    create_topic(run_name, partitions, bootstrap_servers=bootstrap_servers)
    create_topic(predictions_topic, 1, bootstrap_servers=bootstrap_servers)
    names = [f"{run_name}-u{i + 1}" for i in range(updaters)]
    started = time.time()
    processes = [start_updater(run_name, predictions_topic, run_name, name, bootstrap_servers=bootstrap_servers,
                               state_key=state_key, log_dir=log_dir, model=model, idle_timeout_s=timeout_s,
                               session_timeout_s=session_timeout_s, records_per_transaction=records_per_transaction)
                 for name in names]
    deadline = time.monotonic() + timeout_s

    def check() -> None:
        for process in processes:
            if process.poll() is not None:
                raise EventmlError(_ended(process))
        if time.monotonic() > deadline:
            raise EventmlError(f"the {updaters} updaters of {run_name!r} did not finish within {timeout_s:g} s")

    try:
        while not _settled(read_assignments(run_name, bootstrap_servers=bootstrap_servers, timeout_s=10),
                           set(names), partitions):
            check()
            time.sleep(0.5)
        settled = time.time()
        gate = produce_at_once(events, run_name, bootstrap_servers=bootstrap_servers)
        # offsets count the transactions' commit markers too: a read tells whether every event is predicted
        while not (_committed(predictions_topic, bootstrap_servers) >= len(events)
                   and read_predictions(predictions_topic, bootstrap_servers=bootstrap_servers,
                                        idle_timeout_s=0.5)["id"].nunique() >= len(events)):
            check()
            time.sleep(0.5)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    predictions = read_predictions(predictions_topic, bootstrap_servers=bootstrap_servers)
    assignments = read_assignments(run_name, bootstrap_servers=bootstrap_servers)
    for topic in (run_name, predictions_topic):
        delete_topic(topic, bootstrap_servers=bootstrap_servers)
    delete_group_topics(run_name, bootstrap_servers=bootstrap_servers)
    seconds = float(predictions["ts"].max()) - gate
    return {"updaters": updaters, "events": len(events), "predictions": len(predictions),
            "duplicates": len(predictions) - int(predictions["id"].nunique()),
            "events_per_s": len(events) / seconds if seconds > 0 else None, "seconds": seconds,
            "first_prediction_s": float(predictions["ts"].min()) - gate,
            "startup_s": settled - started, "rebalances": int((assignments["event"] == "assigned").sum())}
