"""Prediction service speed: requests/s and latency against the model's own predict rate.

In one run, against one real broker: a live updater (river_logreg) learns ``--events`` sea events
and commits; ``eventml serve`` serves its committed model in its own process (so the load
generator here does not share its interpreter); an asyncio load generator with httpx keeps
``concurrency`` requests in flight for ``--seconds`` each, at concurrency 1, 8 and 32, with one
event per request ("single") and ``--batch`` events per request ("batched"). The denominator is the
model alone: the same prediction step the service runs (``predict_proba_one`` and its argmax), in
this process, events/s. Then the swap's effect on p99: the same load (concurrency 8, single)
while an ``eventml live`` process commits a new model every ~0.1 s from events produced at
``--swap-rate`` events/s, against the same load without swaps (measured right before).

The client and the server share the machine's cores: on a 2-core machine the load generator's own
work (httpx, asyncio) takes a large share of the CPU, so these are the figures of one machine
serving itself, a floor for a separate client.

Prints a table and writes JSON to ``benchmarks/results/serve.json``.

Usage: ``python benchmarks/bench_serve.py [--seconds 3] [--events 5000] [--batch 32]
[--bootstrap-servers HOST:PORT]`` (without a bootstrap address a local broker is started in a
temporary folder). A run takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

import eventml as em
from eventml.kafka import free_port, kafka_for
from eventml.live import LiveUpdater
from eventml.live.snapshots import list_snapshots, load_snapshot

HERE = Path(__file__).resolve().parent


def model_rate(scorer, events, seconds: float = 1.0) -> float:
    """Events/s of the service's prediction step (the committed scorer's predict_event) on the model alone."""
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for event in events:
            scorer.predict_event(event["id"], event["features"])
        n += len(events)
    return n / (time.perf_counter() - started)


async def load(url: str, bodies: list, concurrency: int, seconds: float) -> dict:
    latencies, failures, events = [], 0, 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        ends = time.perf_counter() + seconds

        async def worker(k: int) -> None:
            nonlocal failures, events
            i = k
            while time.perf_counter() < ends:
                body = bodies[i % len(bodies)]
                i += concurrency
                started = time.perf_counter()
                answer = await http.post("/predict", content=body, headers={"content-type": "application/json"})
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    failures += 1
                else:
                    events += body.count(b'"id"')

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        wall = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    return {"requests": len(latencies), "failures": failures, "requests_per_s": len(latencies) / wall,
            "events_per_s": events / wall, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99))}


def wait_ready(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).json()["model_ready"]:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the service did not become ready: {proc.stderr.read() if proc.poll() is not None else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of load per measurement")
    parser.add_argument("--events", type=int, default=5000, help="events the model learns first")
    parser.add_argument("--batch", type=int, default=32, help="events per batched request")
    parser.add_argument("--swap-rate", type=float, default=1000, help="events/s produced while swaps are measured")
    parser.add_argument("--bootstrap-servers")
    args = parser.parse_args()

    with kafka_for(args.bootstrap_servers) as servers, tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        env = {**os.environ, "EVENTML_BOOTSTRAP_SERVERS": servers}
        topic = f"bench-serve-{int(time.time())}"
        state = Path(tmp) / "state"
        em.produce(em.synthetic("sea", args.events, seed=1), topic, bootstrap_servers=servers, progress=False)
        LiveUpdater(topic, f"{topic}.pred", state_dir=state, bootstrap_servers=servers, max_events=args.events,
                    records_per_transaction=1000).run()
        scorer = load_snapshot(list_snapshots(state)[-1]).state.scorer
        probes = [{"id": f"q-{e.id}", "features": e.features} for e in em.synthetic("sea", 512, seed=2)]
        single = [json.dumps(p).encode() for p in probes]
        batched = [json.dumps(probes[i:i + args.batch]).encode() for i in range(0, len(probes), args.batch)]

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "eventml.cli", "serve", "--state-dir", str(state),
                                   "--port", str(port), "--log-level", "warning"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_ready(url, server)
            asyncio.run(load(url, single, 8, 1.0))  # warm-up
            alone = model_rate(scorer, probes)
            rows = []
            for concurrency in (1, 8, 32):
                for mode, bodies in (("single", single), ("batched", batched)):
                    row = {"concurrency": concurrency, "mode": mode,
                           **asyncio.run(load(url, bodies, concurrency, args.seconds))}
                    row["events_vs_model_alone"] = row["events_per_s"] / alone
                    rows.append(row)

            # the swap's effect on p99: the same load, with and without an updater committing meanwhile
            quiet = asyncio.run(load(url, single, 8, args.seconds))
            n_more = int(args.swap_rate * (args.seconds + 4))
            job = em.produce_in_background(list(em.synthetic("sea", args.events + n_more, seed=1))[args.events:],
                                           topic, rate=args.swap_rate, bootstrap_servers=servers)
            live = subprocess.Popen([sys.executable, "-m", "eventml.cli", "live", "--events", topic, "--predictions",
                                     f"{topic}.pred", "--state-dir", str(state), "--transaction-interval", "0.1",
                                     "--max-events", str(args.events + n_more), "--quiet"],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(3.0)  # the updater's start (imports, clients)
            before = httpx.get(f"{url}/healthz").json()["watcher"]["swaps"]
            swapping = asyncio.run(load(url, single, 8, args.seconds))
            swaps = httpx.get(f"{url}/healthz").json()["watcher"]["swaps"] - before
            job.join()
            live.communicate(timeout=120)
        finally:
            server.terminate()
            server.wait(30)

    print(f"model alone (predict_proba_one + argmax, in process): {alone:,.0f} events/s")
    print(f"{'conc':>4} {'mode':>8} {'req/s':>8} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'fail':>4} {'vs model':>8}")
    for r in rows:
        print(f"{r['concurrency']:>4} {r['mode']:>8} {r['requests_per_s']:>8,.0f} {r['events_per_s']:>9,.0f} "
              f"{r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['failures']:>4} {r['events_vs_model_alone']:>8.3f}")
    print(f"swap effect (concurrency 8, single): p99 {quiet['p99_ms']:.2f} ms without swaps, "
          f"{swapping['p99_ms']:.2f} ms with {swaps} swaps in {args.seconds:g} s "
          f"({swapping['failures']} failures); p50 {quiet['p50_ms']:.2f} -> {swapping['p50_ms']:.2f} ms")
    out = {"model_alone_events_per_s": alone, "rows": rows, "batch": args.batch, "seconds": args.seconds,
           "swap": {"without": quiet, "with": swapping, "swaps": swaps}, "cpus": os.cpu_count()}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "serve.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
