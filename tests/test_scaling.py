"""Unit tests of eventml.scaling: where Kafka puts a keyed event, the partition sweep, exactly-once counts,
the updater command and who owned which partition when. No broker needed."""

from __future__ import annotations

import pandas as pd
import pytest

import eventml as em
from eventml.scaling import (count_predictions, kafka_partition, ownership, partition_moves, partition_sweep,
                             prediction_accuracy, updater_command)


def test_kafka_partition_is_the_default_partitioner_of_the_java_client():
    # Utils.murmur2 of the Java client (its own test vectors); partition = toPositive(murmur2) % n
    java = {"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536}
    for key, hashed in java.items():
        for n in (1, 2, 5, 6, 12):
            assert kafka_partition(key, n) == kafka_partition(key.encode(), n) == (hashed & 0x7FFFFFFF) % n


def test_kafka_partition_refuses_no_partitions():
    with pytest.raises(em.ConfigError, match="partitions"):
        kafka_partition("e-1", 0)


def test_one_partition_is_the_global_model_and_equals_prequential():
    events = list(em.synthetic("sea", 1500, seed=4))
    sweep = partition_sweep(events, [1, 3], "river_gnb", seed=4)
    offline = em.prequential(events, "river_gnb", metrics=("accuracy",), every=len(events), seed=4)
    assert sweep["accuracy"].iloc[0] == offline["accuracy"].iloc[-1]
    assert sweep["global_accuracy"].tolist() == [offline["accuracy"].iloc[-1]] * 2
    assert sweep["gap"].iloc[0] == 0.0
    assert sweep["events"].tolist() == [1500, 1500]
    assert sweep["scored"].tolist() == [1499, 1497]  # a fresh GNB predicts nothing: one event per partition unscored


def test_each_partition_learns_alone_from_its_murmur2_share_of_the_stream():
    events = list(em.synthetic("sea", 1200, seed=5))
    sweep = partition_sweep(events, [4], "river_gnb", seed=5)
    by_partition = partition_sweep(events, [4], "river_gnb", seed=5, by_partition=True)
    assert by_partition["partition"].tolist() == [0, 1, 2, 3]
    for p in range(4):
        mine = [e for e in events if kafka_partition(e.id, 4) == p]
        alone = em.prequential(mine, "river_gnb", metrics=("accuracy",), every=len(mine), seed=5)
        assert by_partition.loc[p, "events"] == len(mine)
        assert by_partition.loc[p, "accuracy"] == alone["accuracy"].iloc[-1]
    low, high = sweep.loc[0, ["partition_accuracy_min", "partition_accuracy_max"]]
    assert low <= sweep.loc[0, "accuracy"] <= high
    assert sweep.loc[0, "events_per_model_min"] == by_partition["events"].min()
    assert sweep.loc[0, "gap"] == pytest.approx(sweep.loc[0, "global_accuracy"] - sweep.loc[0, "accuracy"])


@pytest.mark.parametrize("counts", [[], [2, 2], [0]])
def test_partition_sweep_refuses_bad_counts(counts):
    with pytest.raises(em.ConfigError):
        partition_sweep([], counts)


def test_prediction_accuracy_and_counts():
    events = [em.Event(f"e-{i}", {"x": i}, label=i % 2) for i in range(4)]
    predictions = pd.DataFrame({"id": ["e-0", "e-1", "e-1", "e-2", "zz"], "prediction": [0, 0, 0, None, 1]})
    assert prediction_accuracy(predictions, events) == pytest.approx(1 / 3)
    assert count_predictions(predictions, [e.id for e in events]) == {
        "predictions": 5, "distinct": 4, "duplicates": 1, "missing": 1, "unexpected": 1}


def test_updater_command_runs_eventml_live_in_a_group():
    command = updater_command("t", "t.pred", "g", "u2", idle_timeout_s=2.5, records_per_transaction=100)
    assert command[1:4] == ["-m", "eventml.cli", "live"]
    assert command[command.index("--group") + 1] == "g" and command[command.index("--name") + 1] == "u2"
    assert command[command.index("--idle-timeout") + 1] == "2.5"
    assert command[command.index("--records-per-transaction") + 1] == "100"
    assert command[-1] == "--quiet"


def test_ownership_closes_an_unannounced_stretch_where_the_next_owner_begins_and_counts_moves():
    rows = pd.DataFrame([(0.0, "a", "assigned", [0, 1, 2]), (1.0, "a", "revoked", [0, 1, 2]),
                         (1.2, "a", "assigned", [0, 1]), (1.2, "b", "assigned", [2]),
                         (9.0, "b", "assigned", [0, 1, 2]),  # a was killed: it said nothing
                         (15.0, "b", "revoked", [0, 1, 2])],
                        columns=["time", "updater", "event", "partitions"])
    stretches = ownership(rows)
    got = {(r.partition, r.updater, r.start, r.end, r.ended) for r in stretches.itertuples()}
    assert got == {(0, "a", 0.0, 1.0, "revoked"), (1, "a", 0.0, 1.0, "revoked"), (2, "a", 0.0, 1.0, "revoked"),
                   (0, "a", 1.2, 9.0, "taken over"), (1, "a", 1.2, 9.0, "taken over"),
                   (2, "b", 1.2, 15.0, "revoked"), (0, "b", 9.0, 15.0, "revoked"), (1, "b", 9.0, 15.0, "revoked")}
    assert partition_moves(stretches) == 3  # 2 from a to b; 0 and 1 from a to b
    still = ownership(rows.iloc[:5], end=20.0)
    assert set(still[still.ended == "open"].end) == {20.0}
