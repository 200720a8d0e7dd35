"""The live updater's parts, each without a broker: the merge order of input partitions, the per-record
processor (predictions, dead letters, model errors, label expiry, max_pending), the state's snapshots."""

from __future__ import annotations

import pickle
import re

import pytest

import eventml as em
from eventml.dlq import read_headers
from eventml.errors import ConfigError, SnapshotError
from eventml.learners import make_learner
from eventml.live.merge import EVENTS, LABELS, WAIT, InputPartition, PartitionMerge
from eventml.live.processor import RecordProcessor
from eventml.live.snapshots import FORMAT, find_snapshot, load_snapshot, write_snapshot
from eventml.live.state import UpdaterState, check_resumable
from eventml.live.task import Task
from eventml.scoring import Scorer


class Record:
    """What the consumer hands over: a confluent-kafka Message's accessors (a data object, no client)."""

    def __init__(self, topic, offset, ts_ms, value=b"", key=None, partition=0, error=None):
        self._topic, self._offset, self._ts, self._value = topic, offset, ts_ms, value
        self._key, self._partition, self._error = key, partition, error

    def topic(self):
        return self._topic

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def timestamp(self):
        return (1, self._ts)

    def value(self):
        return self._value

    def key(self):
        return self._key

    def error(self):
        return self._error


def drain(merge, force=False):
    out = []
    while (picked := merge.pick(force)) not in (None, WAIT):
        where, record = picked
        out.append((where.topic, where.partition, record.offset()))
    return out, picked


# ----------------------------------------------------------------------------- merge


def test_partitions_merge_by_record_time_events_before_labels_on_a_tie_then_lower_partition():
    inputs = [InputPartition("e", 0, EVENTS), InputPartition("e", 1, EVENTS), InputPartition("l", 0, LABELS)]
    merge = PartitionMerge(inputs, high_watermark=lambda where: where.fetched)
    merge.fill([Record("e", 0, 100), Record("e", 1, 300), Record("l", 0, 100, partition=0),
                Record("e", 0, 100, partition=1), Record("e", 2, 50), Record("l", 1, 400)])
    order, last = drain(merge)
    assert order == [("e", 0, 0), ("e", 1, 0), ("l", 0, 0), ("e", 0, 1), ("e", 0, 2), ("l", 0, 1)]
    assert last is None and merge.caught_up()


def test_the_merge_waits_for_a_partition_that_may_still_bring_an_earlier_record():
    inputs = [InputPartition("e", 0, EVENTS), InputPartition("l", 0, LABELS)]
    highs = {"e:0": 5, "l:0": 5}  # both partitions have records not fetched yet
    merge = PartitionMerge(inputs, high_watermark=lambda where: highs[where.key])
    merge.fill([Record("e", 0, 100)])
    assert merge.pick(force=False) is WAIT  # the labels partition may hold an older record
    assert not merge.caught_up()
    where, record = merge.pick(force=True)  # after a few empty polls the silent partition is skipped
    assert (where.key, record.offset()) == ("e:0", 0)


def test_an_end_of_partition_event_marks_the_partition_read_to_its_end():
    inputs = [InputPartition("e", 0, EVENTS), InputPartition("l", 0, LABELS)]
    merge = PartitionMerge(inputs, high_watermark=lambda where: -1, end_of_partition=lambda error: error == "eof")
    merge.fill([Record("e", 0, 10), Record("l", 0, 0, error="eof")])
    assert [o for o in drain(merge)[0]] == [("e", 0, 0)]
    assert not merge.caught_up()  # the events partition has no end event and no watermark


def test_take_hands_out_the_merge_order_in_runs_of_one_partition():
    def filled(records):
        inputs = [InputPartition("e", 0, EVENTS), InputPartition("e", 1, EVENTS), InputPartition("l", 0, LABELS)]
        merge = PartitionMerge(inputs, high_watermark=lambda where: where.fetched)
        merge.fill(records)
        return merge

    records = [Record("e", 0, 100), Record("e", 1, 110), Record("e", 2, 120), Record("e", 0, 115, partition=1),
               Record("l", 0, 130), Record("e", 3, 140), Record("e", 4, 150), Record("e", 5, 160)]
    one_by_one, _ = drain(filled(records))
    merge, runs = filled(records), []
    while (taken := merge.take(False, 2)) not in (None, WAIT):
        where, run = taken
        runs.append([(where.topic, where.partition, record.offset()) for record in run])
    assert [len(run) for run in runs] == [2, 1, 1, 1, 2, 1]  # at most 2, one partition each, until another's turn
    assert [record for run in runs for record in run] == one_by_one
    single = PartitionMerge([InputPartition("e", 0, EVENTS)], high_watermark=lambda where: where.fetched)
    single.fill([Record("e", i, i) for i in range(5)])
    assert [len(single.take(False, 3)[1]), len(single.take(False, 3)[1]), single.take(False, 3)] == [3, 2, None]


def test_records_given_back_after_an_abort_are_taken_again_in_the_same_order():
    def filled():
        inputs = [InputPartition("e", 0, EVENTS), InputPartition("e", 1, EVENTS), InputPartition("l", 0, LABELS)]
        merge = PartitionMerge(inputs, high_watermark=lambda where: where.fetched)
        merge.fill([Record("e", 0, 100), Record("e", 1, 110), Record("e", 2, 120), Record("e", 0, 115, partition=1),
                    Record("l", 0, 130), Record("e", 3, 140), Record("e", 4, 150), Record("e", 1, 155, partition=1)])
        return merge

    merge = filled()
    task = Task(0, "e", merge.inputs)
    task.taken.append(merge.take(False, 2))  # two runs of the transaction that is aborted
    task.taken.append(merge.take(False, 2))
    assert task.dirty and [len(where.buf) for where in merge.inputs] == [3, 1, 1]
    task.give_back()
    assert not task.dirty and [len(where.buf) for where in merge.inputs] == [5, 2, 1]
    again = PartitionMerge(merge.inputs, high_watermark=lambda where: where.fetched)  # the task as restored
    assert drain(again)[0] == drain(filled())[0]


# ----------------------------------------------------------------------------- processor


def processor(name="river_logreg", labels_topic=False, max_wait=None, max_pending=None, too_large=None):
    state = UpdaterState.fresh(make_learner(name), ["accuracy", "log_loss"], 100, max_wait=max_wait,
                               max_pending=max_pending)
    sent = []

    def send(topic, value, key, partition=-1, headers=None):
        if too_large is not None and value is not None and len(value) > too_large:
            return False
        sent.append((topic, value, key, headers))
        return True

    return RecordProcessor(state, "preds", send, keep_unlabelled=labels_topic), sent


def event_record(offset, features, label=None, ts=None, event_id=None):
    value = em.events.encode_event(em.Event(event_id or f"e-{offset}", features, label, ts))
    return Record("events", offset, 1_000 * offset, value)


def test_an_event_is_predicted_published_and_learned_exactly_as_offline():
    proc, sent = processor()
    events = list(em.synthetic("sea", 50, seed=2))
    offline = make_learner("river_logreg")
    for i, event in enumerate(events):
        assert proc.event(Record("events", i, 1000 + i, em.events.encode_event(event))) == 1000 + i
        proba = offline.predict_proba_one(event.features)
        prediction = em.events.decode_prediction(sent[-1][1])
        assert (prediction.model_version, prediction.proba) == (i, {str(k): v for k, v in proba.items()} or None)
        offline.learn_one(event.features, event.label)
    assert proc.state.counts == {"events": 50} and proc.state.learned == 50


def test_a_model_error_dead_letters_the_event_without_a_prediction():
    class Fails:
        name, task, label_from_proba = "fails", "classification", True

        def predict_proba_one(self, x):
            if "boom" in x:
                raise ValueError("no")
            return {0: 1.0}

        def predict_one(self, x):
            return 0

        def learn_one(self, x, y):
            pass

        def clone(self):
            return self

    proc, sent = processor()
    proc.state.model.scorer = Scorer(Fails(), ["accuracy", "log_loss"], 10)
    record = event_record(0, {"boom": 1.0}, label=1)
    assert proc.event(record) is None
    ((topic, value, key, headers),) = sent
    headers = read_headers(headers)
    assert topic == "events.dlq" and value == record.value()
    assert headers["eventml.error.reason"] == "model_error"
    assert headers["eventml.error.message"] == "learner 'fails' failed to predict event 'e-0': ValueError: no"
    assert proc.state.counts == {"dead_letters": 1, "model_errors": 1}


def test_a_run_of_records_ends_exactly_as_the_same_records_one_at_a_time():
    class Quirky:
        """A river learner that fails to predict, to learn, or gives probabilities log loss cannot score."""
        name, task, label_from_proba = "quirky", "classification", True

        def __init__(self):
            self.model = make_learner("river_logreg")

        def predict_proba_one(self, x):
            if "boom" in x:
                raise ValueError("cannot predict")
            return {True: "not a number"} if "odd" in x else self.model.predict_proba_one(x)

        def learn_one(self, x, y):
            if "bad" in x:
                raise ValueError("cannot learn")
            self.model.learn_one(x, y)

    events = list(em.synthetic("sea", 60, seed=3))
    records = []
    for i, event in enumerate(events):
        features, label, event_id = dict(event.features), event.label, None
        if i % 7 == 3:
            features["boom"] = 1.0
        elif i % 11 == 5:
            features["bad"] = 1.0
        elif i % 13 == 6:
            features["odd"] = 1.0
        elif i % 5 == 4:
            label = None  # waits for its label
        elif i == 20:
            event_id = "i" * 3000  # its prediction is too large to publish
        records.append(event_record(i, features, label=label, ts=float(i), event_id=event_id))
    records[30] = Record("events", 30, 30_000, b"not json")

    def run(sizes):
        proc, sent = processor(labels_topic=True, too_large=2000)
        proc.state.model.scorer = Scorer(Quirky(), ["accuracy", "log_loss"], 10)
        published, start = [], 0
        for size in sizes:
            published += proc.events(records[start:start + size])
            start += size
        assert start == len(records)
        out = [(topic, em.events.decode_prediction(value).to_dict() if topic == "preds" else value, key,
                read_headers(headers) if headers else None) for topic, value, key, headers in sent]
        for topic, value, key, headers in out:  # without the time each prediction was made, and its length
            if topic == "preds":
                del value["ts"]
            elif headers["eventml.error.reason"] == "prediction_too_large":
                headers["eventml.error.message"] = re.sub(r"\d+ bytes", "N bytes", headers["eventml.error.message"])
        state = proc.state
        counts = {**state.counts, "learned": state.learned}
        return published, out, counts, dict(state.dlq_reasons), state.scorer.metrics(), len(state.pending)

    one_by_one = run([1] * len(records))
    published, sent, counts, reasons, metrics, pending = one_by_one
    assert reasons == {"model_error": 17, "not_json": 1, "prediction_too_large": 1}
    assert counts["events"] == len(published) == 41 and counts["learned"] == 41 - 8 + 1 and pending == 8
    assert [topic for topic, *_ in sent].count("events.dlq") == 19
    assert run([60]) == one_by_one
    assert run([7, 1, 23, 29]) == one_by_one


def test_a_dead_letter_too_large_for_the_producer_leaves_a_shorter_copy():
    proc, sent = processor(too_large=50_000)
    record = Record("events", 7, 0, b"x" * 100_000)
    proc.event(record)
    ((topic, value, _, headers),) = sent  # neither the value less 16 KiB nor its first 64 KiB fit
    assert topic == "events.dlq" and value is None
    assert read_headers(headers)["eventml.value.truncated"] == "100000"
    proc, sent = processor(too_large=70_000)
    proc.event(record)
    assert sent[0][1] == b"x" * (64 << 10) and proc.state.counts["dead_letters"] == 1


def test_an_event_whose_prediction_is_too_large_to_publish_is_dead_lettered_not_lost():
    record = event_record(0, {"x": 1.0}, label=1, event_id="i" * 3000)  # the id is the key and in the prediction
    proc, sent = processor(too_large=len(record.value()) + 10)
    assert proc.event(record) is None
    ((topic, value, _, headers),) = sent
    assert topic == "events.dlq" and value == record.value()
    assert read_headers(headers)["eventml.error.reason"] == "prediction_too_large"
    # learned from, not counted as predicted
    assert proc.state.counts == {"dead_letters": 1} and proc.state.learned == 1


def test_a_promotion_too_large_to_publish_is_dead_lettered_and_the_new_champion_answers_from_the_next_event():
    class Always:
        """A classifier that is sure of one label."""
        task, label_from_proba = "classification", True

        def __init__(self, name, label):
            self.name, self.label = name, label

        def clone(self):
            return Always(self.name, self.label)

        def predict_proba_one(self, x):
            return {self.label: 1.0}

        def predict_one(self, x):
            return self.label

        def learn_one(self, x, y):
            pass

    rule = em.live.Promotion(metric="accuracy", window=10, margin=0.1, min_labels=5)
    state = UpdaterState.fresh([Always("wrong", False), Always("right", True)], ["accuracy"], 100, promotion=rule)
    sent = []

    def send(topic, value, key, partition=-1, headers=None):  # a promotion with its key is over 3,000 bytes
        if topic == "preds.champions" and len(value) + len(key) > 2_500:
            return False
        sent.append((topic, value, key, headers))
        return True

    proc = RecordProcessor(state, "preds", send)
    records = [event_record(i, {"x": 1.0}, label=True, event_id=f"{i}-" + "i" * 1500) for i in range(20)]
    for record in records:
        proc.event(record)  # nothing raises

    ((topic, value, _, headers),) = [row for row in sent if row[0] == "events.dlq"]
    promoted_at = [record.value() for record in records].index(value)
    assert topic == "events.dlq" and read_headers(headers)["eventml.error.reason"] == "promotion_too_large"
    assert state.champion.name == "right" and len(state.champion.promotions) == 1 and state.counts["dead_letters"] == 1
    answers = [em.events.decode_prediction(value).model for topic, value, *_ in sent if topic == "preds"]
    assert answers == ["wrong"] * (promoted_at + 1) + ["right"] * (len(records) - promoted_at - 1)
    assert not [row for row in sent if row[0] == "preds.champions"]


def test_late_labels_join_the_features_kept_then_and_expire_after_max_wait():
    proc, sent = processor(labels_topic=True, max_wait=10.0)
    proc.event(event_record(0, {"x": 1.0}, ts=100.0))
    proc.event(event_record(1, {"x": 2.0}, ts=105.0))
    proc.event(event_record(2, {"x": 3.0}, ts=120.0))  # e-0 and e-1 have waited more than 10 s: expired
    assert len(proc.state.pending) == 1 and proc.state.pending.counts["expired"] == 2
    label = em.events.encode_label(em.Label("e-2", 1, ts=121.0))
    proc.label(Record("labels", 0, 0, label))
    proc.label(Record("labels", 1, 0, em.events.encode_label(em.Label("e-0", 0, ts=122.0))))
    proc.label(Record("labels", 2, 0, em.events.encode_label(em.Label("nobody", 0, ts=122.0))))
    counts = proc.state.pending.counts
    assert (counts["on_time"], counts["late"], counts["unknown_id"]) == (1, 1, 1)
    assert proc.state.learned == 1 and len(proc.state.pending) == 0


def test_at_most_max_pending_predictions_wait_the_oldest_expire_first():
    proc, _ = processor(labels_topic=True, max_pending=3)
    for i in range(5):
        proc.event(event_record(i, {"x": float(i)}, ts=float(i)))
    assert len(proc.state.pending) == 3 and proc.state.pending.counts["expired"] == 2
    proc.label(Record("labels", 0, 0, em.events.encode_label(em.Label("e-0", 1, ts=9.0))))
    proc.label(Record("labels", 1, 0, em.events.encode_label(em.Label("e-4", 1, ts=9.0))))
    assert proc.state.pending.counts["late"] == 1 and proc.state.learned == 1


# ----------------------------------------------------------------------------- snapshots


def test_a_snapshot_round_trips_the_state_with_public_types_only(tmp_path):
    proc, _ = processor(labels_topic=True)
    for i in range(20):
        proc.event(event_record(i, {"x": float(i)}, ts=float(i), label=i % 2 if i % 3 else None))
    path = write_snapshot(tmp_path, 3, {"events:0": 20}, proc.state)
    assert find_snapshot(tmp_path, {"events:0": 20}) == path
    loaded = load_snapshot(path).state
    assert loaded.counts == proc.state.counts and len(loaded.pending) == len(proc.state.pending)
    modules = {type(obj).__module__.split(".")[0] for obj in (loaded, loaded.scorer, loaded.pending)}
    assert modules == {"eventml"} and not any(n.startswith("_") for n in
                                               (type(loaded).__name__, type(loaded.scorer).__name__))
    assert path.read_bytes().startswith(f"eventml-snapshot {FORMAT}\n".encode())


def test_a_snapshot_of_the_previous_format_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "snapshot-00000001-9733cf97202b.pkl"
    path.write_bytes(pickle.dumps({"format": 1, "sequence": 1, "offsets": {}, "state": None}))
    with pytest.raises(SnapshotError, match="earlier eventml .snapshot format 1.*new state_dir"):
        load_snapshot(path)


def test_a_committed_state_of_other_models_rule_or_windows_is_refused_with_what_differs():
    learners = [make_learner("river_logreg"), make_learner("river_gnb")]
    rule = em.live.Promotion(metric="accuracy", window=50, margin=0.01, min_labels=20)
    windows = em.windows.Window("user", "amount", ["count"], last=5)
    state = UpdaterState.fresh(learners, ["accuracy"], 100, promotion=rule, windows=[windows])
    check_resumable(state, ["river_logreg", "river_gnb"], rule, state.windows, "t:0", "advice")  # the same: resumed
    refusals = [(["river_logreg"], rule, state.windows, "learns river_logreg, river_gnb, not river_logreg"),
                (["river_logreg", "river_gnb"], None, state.windows, "promotes by .*, not None"),
                (["river_logreg", "river_gnb"], rule, None,
                 r"computes the windowed features \['amount_count_last5_by_user'\], not \[\]")]
    for names, promotion, wanted_windows, says in refusals:
        with pytest.raises(ConfigError, match=f"the committed state of t:0 {says}; advice"):
            check_resumable(state, names, promotion, wanted_windows, "t:0", "advice")
