"""Scale-out: events/s of a group of live updaters against their number, the time a partition takes
to move after an updater dies or stops, and the cost of keeping model state in Kafka.

On a three-broker cluster (``LocalCluster(brokers=3)``, or the one ``--bootstrap-servers`` names),
``river_logreg`` on SEA events, in one run:

1. **Throughput against updaters.** For 1, 2 and 3 ``eventml live --group`` processes over a topic of six
   partitions: each group starts on an empty topic, and once every updater holds its partitions the same
   ``--events`` events are written in one Kafka transaction, so they appear at once to the updaters
   (``read_committed``); events/s is the events over the time from that commit to the last prediction
   (:func:`eventml.scaling.group_throughput`). The counts alternate order across ``--rounds``; the median
   per count is reported with its ratio to one updater.
2. **Failover.** Two updater processes share six partitions while events flow at ``--rate``; one is
   killed with SIGKILL, or (another run) stopped cleanly (SIGTERM, which its runner turns into
   ``GroupUpdater.stop()``: it commits and leaves the group). Per partition it owned: seconds from the
   signal until another updater announced the partition (``moved_s``) and until the first prediction of
   that partition after that (``served_s``). After a kill this is the session timeout
   (``--session-timeout``, the command's default 10 s) plus a rebalance; after a clean stop, a rebalance.
3. **Pauses of the partitions that do not move.** Two updater processes share six partitions while events
   flow at ``--rate``; a third joins, later one of the first two stops cleanly. For each rebalance, the
   longest gap in the committed predictions (by prediction time) of each partition whose owner is the same
   before and after, from the signal until the group settled plus a second (``kept_gap_s``); the same
   for the partitions that moved (``moved_gap_s``). At 500 events/s a partition gets a prediction every
   12 ms or so: a gap under ``transaction_interval_s`` (0.5 s) is no pause.
4. **State in Kafka against the state directory.** One ``GroupUpdater`` (state in a compacted topic,
   written in each transaction) against one ``LiveUpdater`` (snapshots in a folder), both in this process,
   over the same one-partition topic of ``--events`` events, alternating; events/s from the first to the
   last prediction's time, and the ratio.

What this machine limits: it has 2 CPU cores, shared by three Kafka JVMs, every updater process and
this script (and, on the shared development machine, other people's work). An updater is a Python
process that needs one core for its decode/predict/learn/encode loop, so two updaters already compete
with the brokers for the two cores, and a third adds processes, not cores: expect 2 and 3 updaters to be
no faster than one here, and the ratios to be noisy. With a core per updater and the brokers on their
own machines, the rate should grow close to linearly with the updaters, up to the number of partitions
(six), since the updaters share nothing but Kafka. The failover times do not depend on cores: they are
set by the session timeout and the rebalance.

Prints a table and writes JSON to ``benchmarks/results/scale.json``.

Usage: ``python benchmarks/bench_scale.py [--events 20000] [--rounds 2] [--rate 500] [--session-timeout 10]
[--bootstrap-servers HOST:PORT,...] [--parts throughput,failover,pauses,state] [--logs DIR]`` (without a bootstrap
address a local three-node cluster is started in a temporary folder, which takes a minute or two). A run at
the defaults takes about ten minutes here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import eventml as em
from eventml import scaling
from eventml.kafka import LocalCluster
from eventml.live import LiveUpdater
from eventml.live.group import GroupUpdater, read_assignments

HERE = Path(__file__).resolve().parent
KEY = uuid.uuid4().hex
PARTITIONS = 6

# an updater of a group whose SIGTERM is a clean stop (the command has none: Ctrl-C interrupts it mid-transaction)
RUNNER = """import logging, signal, sys
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
from eventml.live.group import GroupUpdater
events, predictions, group, name, servers, session = sys.argv[1:7]
updater = GroupUpdater(events, predictions, group=group, name=name, bootstrap_servers=servers, idle_timeout_s=30,
                       session_timeout_s=float(session))
signal.signal(signal.SIGTERM, lambda *_: updater.stop())
updater.run()
"""



def _kill_left(procs):
    """Kill the updater processes still running (a round that failed half-way)."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()


def _partitioned_predictions(predictions, servers):
    """The committed predictions, each with the events partition of its id."""
    got = em.read_predictions(predictions, bootstrap_servers=servers)
    got["events_partition"] = got["id"].map(lambda i: scaling.kafka_partition(i, PARTITIONS))
    return got

def throughput(servers: str, events: list, counts: list[int], rounds: int, logs: Path) -> dict:
    runs = []
    for r in range(rounds):
        for n in (counts if r % 2 == 0 else counts[::-1]):
            row = scaling.group_throughput(events, n, partitions=PARTITIONS, bootstrap_servers=servers, state_key=KEY,
                                           run_name=f"bench-scale-{uuid.uuid4().hex[:6]}-x{n}", log_dir=logs)
            row["round"] = r
            runs.append(row)
            print(f"  round {r}: {n} updater(s): {row['events_per_s']:,.0f} events/s "
                  f"(settled after {row['startup_s']:.1f} s)", flush=True)
    median = {n: statistics.median(row["events_per_s"] for row in runs if row["updaters"] == n) for n in counts}
    return {"runs": runs, "events_per_s": median, "ratio_to_1": {n: median[n] / median[counts[0]] for n in counts}}


def failover(servers: str, how: str, rate: float, session_timeout_s: float, logs: Path) -> dict:
    """Two updaters; one killed (SIGKILL) or stopped (SIGTERM: GroupUpdater.stop) mid-stream."""
    topic = f"bench-failover-{how}-{uuid.uuid4().hex[:6]}"
    group, predictions = topic, f"{topic}.predictions"
    em.create_topic(topic, PARTITIONS, bootstrap_servers=servers)
    em.create_topic(predictions, 1, bootstrap_servers=servers)
    env = {**os.environ, "EVENTML_STATE_KEY": KEY}
    procs = {}
    for name in ("a", "b"):
        with open(logs / f"{topic}-{name}.log", "w") as log:
            procs[name] = subprocess.Popen([sys.executable, "-c", RUNNER, topic, predictions, group, name, servers,
                                            str(session_timeout_s)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        scaling.wait_until_assigned(group, ["a", "b"], bootstrap_servers=servers, processes=procs.values(),
                                    timeout_s=300)
        seconds = 3 * session_timeout_s + 20
        stream = em.produce_in_background(em.synthetic("sea", int(rate * seconds), seed=7), topic, rate=rate,
                                          bootstrap_servers=servers)
        time.sleep(seconds / 4)
        rows = read_assignments(group, bootstrap_servers=servers)
        owned = rows[(rows.updater == "a")].iloc[-1]
        partitions = list(owned.partitions) if owned.event == "assigned" else []
        signalled = time.time()
        procs["a"].send_signal(signal.SIGKILL if how == "kill" else signal.SIGTERM)
        stream.join()
        for proc in procs.values():
            proc.wait(timeout=120)
    finally:
        _kill_left(procs)
    rows = read_assignments(group, bootstrap_servers=servers)
    got = _partitioned_predictions(predictions, servers)
    moved, served = [], []
    for p in partitions:
        taken = rows[(rows.updater != "a") & (rows.event == "assigned") & (rows.time > signalled)
                     & rows.partitions.map(lambda ps, p=p: p in ps)]
        if taken.empty:
            continue
        at = float(taken.time.iloc[0])
        moved.append(at - signalled)
        after = got[(got.events_partition == p) & (got.ts >= at)]
        if len(after):
            served.append(float(after.ts.min()) - signalled)
    counts = scaling.count_predictions(got, em.read_dataframe(topic, bootstrap_servers=servers)["id"])
    for name in (topic, predictions):
        em.delete_topic(name, bootstrap_servers=servers)
    scaling.delete_group_topics(group, bootstrap_servers=servers)
    return {"how": how, "partitions": partitions, "exit_code": procs["a"].returncode,
            "moved_s": max(moved) if moved else None, "served_s": max(served) if served else None,
            "moved_s_each": moved, "served_s_each": served, "session_timeout_s": session_timeout_s, **counts}


def longest_gap(ts: list[float], start: float, end: float) -> float:
    """The longest time without a prediction between ``start`` and ``end``, from sorted prediction times."""
    times = [start] + [t for t in ts if start < t < end] + [end]
    return max(b - a for a, b in zip(times, times[1:]))


def pauses(servers: str, rate: float, session_timeout_s: float, logs: Path) -> dict:
    """Two updaters share six partitions while events flow at ``rate``; a third joins, then one of the first
    two leaves cleanly (SIGTERM). Per rebalance, the longest gap in the committed predictions of each
    partition that did not move (its owner the same before and after), over the time from the signal until
    the group settled plus a second; and the same for the partitions that moved."""
    topic = f"bench-pauses-{uuid.uuid4().hex[:6]}"
    group, predictions = topic, f"{topic}.predictions"
    em.create_topic(topic, PARTITIONS, bootstrap_servers=servers)
    em.create_topic(predictions, 1, bootstrap_servers=servers)
    env = {**os.environ, "EVENTML_STATE_KEY": KEY}
    procs: dict[str, subprocess.Popen] = {}

    def start(name: str) -> None:
        with open(logs / f"{topic}-{name}.log", "w") as log:
            procs[name] = subprocess.Popen([sys.executable, "-c", RUNNER, topic, predictions, group, name, servers,
                                            str(session_timeout_s)], env=env, stdout=log, stderr=subprocess.STDOUT)

    def owners(rows: Any) -> dict[int, str]:
        latest = rows.sort_values("time", kind="stable").groupby("updater").tail(1)
        return {p: row.updater for row in latest.itertuples() if row.event == "assigned" for p in row.partitions}

    def settled(names: list[str]) -> tuple[dict[int, str], float]:
        deadline = time.monotonic() + 120
        while True:
            rows = read_assignments(group, bootstrap_servers=servers)
            held = owners(rows)
            if sorted(held) == list(range(PARTITIONS)) and set(held.values()) == set(names):
                return held, float(rows.time.max())
            if time.monotonic() > deadline:
                raise RuntimeError(f"group {group} did not settle on {names}: {rows}")
            time.sleep(0.2)

    phases = []
    try:
        for name in ("a", "b"):
            start(name)
        before, _ = settled(["a", "b"])
        seconds = 40.0
        stream = em.produce_in_background(em.synthetic("sea", int(rate * seconds), seed=9), topic, rate=rate,
                                          bootstrap_servers=servers)
        time.sleep(seconds / 4)
        signalled = time.time()
        start("c")
        after, at = settled(["a", "b", "c"])
        phases.append(("join", signalled, at, before, after))
        time.sleep(seconds / 4)
        before = after
        signalled = time.time()
        procs["b"].send_signal(signal.SIGTERM)
        after, at = settled(["a", "c"])
        phases.append(("leave", signalled, at, before, after))
        stream.join()
        for proc in procs.values():
            proc.wait(timeout=120)
    finally:
        _kill_left(procs)
    got = _partitioned_predictions(predictions, servers)
    by_partition = {p: sorted(got[got.events_partition == p].ts) for p in range(PARTITIONS)}
    out = []
    for how, signalled, at, before, after in phases:
        kept = [p for p in range(PARTITIONS) if before[p] == after[p]]
        moved = [p for p in range(PARTITIONS) if before[p] != after[p]]
        gaps = {p: longest_gap(by_partition[p], signalled, at + 1.0) for p in range(PARTITIONS)}
        out.append({"how": how, "settled_s": at - signalled, "kept": kept, "moved": moved,
                    "kept_gap_s": max((gaps[p] for p in kept), default=None),
                    "moved_gap_s": max((gaps[p] for p in moved), default=None), "gaps_s": gaps})
    counts = scaling.count_predictions(got, em.read_dataframe(topic, bootstrap_servers=servers)["id"])
    for name in (topic, predictions):
        em.delete_topic(name, bootstrap_servers=servers)
    scaling.delete_group_topics(group, bootstrap_servers=servers)
    return {"phases": out, **counts}


def window_rate(predictions: str, servers: str, n: int) -> float:
    got = em.read_predictions(predictions, bootstrap_servers=servers)
    assert got["id"].nunique() == n, f"{predictions}: {got['id'].nunique()} of {n} predicted"
    return (n - 1) / float(got["ts"].max() - got["ts"].min())


def state_cost(servers: str, events: list, rounds: int) -> dict:
    topic = f"bench-state-{uuid.uuid4().hex[:6]}"
    em.create_topic(topic, 1, bootstrap_servers=servers)
    em.produce(events, topic, bootstrap_servers=servers, progress=False)
    rates: dict[str, list[float]] = {"kafka": [], "directory": []}
    made = [topic]
    for r in range(rounds):
        for where in (("kafka", "directory") if r % 2 == 0 else ("directory", "kafka")):
            predictions = f"{topic}.{where}-{r}"
            made.append(predictions)
            em.create_topic(predictions, 1, bootstrap_servers=servers)
            if where == "kafka":
                group = f"{topic}-{r}"
                GroupUpdater(topic, predictions, group=group, state_key=KEY, bootstrap_servers=servers,
                             idle_timeout_s=2).run()
                scaling.delete_group_topics(group, bootstrap_servers=servers)
            else:
                with tempfile.TemporaryDirectory() as state_dir:
                    LiveUpdater(topic, predictions, state_dir=state_dir, bootstrap_servers=servers,
                                idle_timeout_s=2, progress=False).run()
            rates[where].append(window_rate(predictions, servers, len(events)))
            print(f"  round {r}: state in {where}: {rates[where][-1]:,.0f} events/s", flush=True)
    for name in made:
        em.delete_topic(name, bootstrap_servers=servers)
    kafka, directory = statistics.median(rates["kafka"]), statistics.median(rates["directory"])
    return {"events_per_s_state_in_kafka": kafka, "events_per_s_state_dir": directory,
            "ratio_kafka_to_dir": kafka / directory, "rounds": rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events of each throughput and state run")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, alternating the order")
    parser.add_argument("--counts", default="1,2,3", help="numbers of updaters")
    parser.add_argument("--rate", type=float, default=500, help="events/s while a partition moves")
    parser.add_argument("--session-timeout", type=float, default=10.0, help="the group's session timeout, seconds")
    parser.add_argument("--bootstrap-servers", help="a cluster's addresses; default: a local 3-node cluster")
    parser.add_argument("--parts", default="throughput,failover,pauses,state", help="which measurements to run")
    parser.add_argument("--logs", help="keep the updaters' logs in this folder (default: a temporary one, removed)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    counts = [int(c) for c in args.counts.split(",")]
    events = list(em.synthetic("sea", args.events, seed=1))
    with contextlib.ExitStack() as stack:
        servers = args.bootstrap_servers or stack.enter_context(LocalCluster(brokers=3, port=0)).bootstrap_servers
        logs = Path(args.logs) if args.logs else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        logs.mkdir(parents=True, exist_ok=True)
        print(f"cluster {servers}; {os.cpu_count()} CPU cores; {args.events:,} events", flush=True)
        tp = moves = paused = state = None
        if "throughput" in parts:
            print("throughput against updaters", flush=True)
            tp = throughput(servers, events, counts, args.rounds, logs)
        if "failover" in parts:
            print("failover", flush=True)
            moves = [failover(servers, how, args.rate, args.session_timeout, logs) for how in ("kill", "stop")]
        if "pauses" in parts:
            print("pauses of the partitions that do not move", flush=True)
            paused = pauses(servers, args.rate, args.session_timeout, logs)
        if "state" in parts:
            print("state in Kafka against the state directory", flush=True)
            state = state_cost(servers, events, args.rounds)

    if tp is not None:
        print(f"\n{'updaters':>8}  {'events/s':>10}  {'ratio to 1':>10}")
        for n in counts:
            print(f"{n:>8}  {tp['events_per_s'][n]:>10,.0f}  {tp['ratio_to_1'][n]:>10.2f}")
    if moves is not None:
        print(f"\n{'failover':>8}  {'moved after':>11}  {'served after':>12}  {'predictions':>11}  {'dup':>4}  "
              f"{'missing':>7}")
        for m in moves:
            moved = "—" if m["moved_s"] is None else f"{m['moved_s']:.1f} s"
            served = "—" if m["served_s"] is None else f"{m['served_s']:.1f} s"
            print(f"{m['how']:>8}  {moved:>11}  {served:>12}  {m['predictions']:>11,}  {m['duplicates']:>4}  "
                  f"{m['missing']:>7}")
    if paused is not None:
        print(f"\n{'rebalance':>9}  {'settled':>8}  {'longest gap, kept':>17}  {'longest gap, moved':>18}  "
              f"(predictions {paused['predictions']:,}, duplicates {paused['duplicates']}, "
              f"missing {paused['missing']})")
        for phase in paused["phases"]:
            print(f"{phase['how']:>9}  {phase['settled_s']:>6.1f} s  {phase['kept_gap_s']:>15.2f} s  "
                  f"{phase['moved_gap_s']:>16.2f} s")
    if state is not None:
        print(f"\nstate in Kafka {state['events_per_s_state_in_kafka']:,.0f} events/s, state directory "
              f"{state['events_per_s_state_dir']:,.0f} events/s: ratio {state['ratio_kafka_to_dir']:.2f}")
    out = {"events": args.events, "rounds": args.rounds, "partitions": PARTITIONS, "cpu_count": os.cpu_count(),
           "session_timeout_s": args.session_timeout, "rate": args.rate, "throughput": tp, "failover": moves,
           "pauses": paused, "state": state}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "scale.json").write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
