"""Card transactions keyed by user, where fraud shows only through windows: bursts and unusual amounts.

Each user has a typical amount (from a wide log-normal: one user's big purchase is another's
coffee) and three usual merchants; they pay every couple of hours, a normal amount at one of their
merchants. Fraud is a burst on one card: ``3`` to ``6`` payments within a few minutes, at random
merchants, of ``4`` to ``10`` times the user's typical amount, all labelled 1. Taken one at a time,
a fraudulent payment looks like any other (its amount is common across users, its merchant too);
what gives it away is the card's recent history: many payments in the last minutes, an amount far
above the user's mean, new merchants. So a learner with windowed features per user
(:mod:`eventml.windows`) beats the same learner without them.

Events are in time order, ``ts`` in epoch seconds, features ``user`` (the card's number, an int: a
learner cannot learn each user's habits from it), ``merchant`` (a string) and ``amount``; label 1 for
fraud, else 0. Produce them keyed by user (``em.produce(..., key="user")``) so
that a user's payments stay in one partition. The same seed gives the same events.

Examples
--------
>>> events = list(transactions(2000, seed=1))
>>> events[0]
Event(id='t-0', features={'user': 1247, 'merchant': 'm4', 'amount': 6.26}, label=0, ts=1764000000.0)
>>> round(sum(e.label for e in events) / len(events), 3), len({e.features["user"] for e in events})
(0.064, 1228)
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator

from eventml.errors import SourceError
from eventml.events import Event
from eventml.sources.convert import START_TS
from eventml.validation import fraction, int_in_range, positive_int, positive_number

__all__ = ["transactions"]


def transactions(n_events: int | None = None, *, seed: int | None = 42, n_users: int = 2000, n_merchants: int = 60,
                 fraud_share: float = 0.015, mean_gap_s: float = 3.0, start_ts: float = START_TS,
                 id_prefix: str = "t-") -> Iterator[Event]:
    """A seeded stream of card payments with bursts of fraud (see the module's description).

    Parameters
    ----------
    n_events
        How many events; ``None`` for endless.
    seed
        The same seed gives the same events.
    n_users, n_merchants
        How many users (cards) and merchants.
    fraud_share
        The chance that a normal payment is followed by a fraud burst on a random card (each burst is
        3 to 6 payments, so about four times as many events are fraud).
    mean_gap_s
        Mean seconds between normal payments of all users together (a user pays every
        ``n_users * mean_gap_s`` seconds on average).
    start_ts, id_prefix
        The time of the first payment; ids are ``f"{id_prefix}{i}"``.
    """
    positive_int("n_events", n_events, allow_none=True, error=SourceError)
    int_in_range("n_users", n_users, 1, error=SourceError)
    int_in_range("n_merchants", n_merchants, 3, error=SourceError)
    fraction("fraud_share", fraud_share, error=SourceError)
    positive_number("mean_gap_s", mean_gap_s, unit="seconds", error=SourceError)
    rng = random.Random(seed)
    users = list(range(n_users))
    typical = {u: rng.lognormvariate(3.5, 1.5) for u in users}
    usual = {u: rng.sample(range(n_merchants), 3) for u in users}
    frauds: list[tuple[float, int, str]] = []  # (ts, order, user) of the fraudulent payments to come
    order = itertools.count()
    ts = start_ts
    for i in itertools.islice(itertools.count(), n_events):
        if frauds and frauds[0][0] <= ts:
            at, _, user = heapq.heappop(frauds)
            amount = typical[user] * rng.uniform(2.5, 5.0)
            yield Event(f"{id_prefix}{i}", {"user": user, "merchant": f"m{rng.randrange(n_merchants)}",
                                            "amount": round(amount, 2)}, 1, at)
            continue
        user = rng.choice(users)
        amount = typical[user] * rng.lognormvariate(0.0, 0.35)
        yield Event(f"{id_prefix}{i}", {"user": user, "merchant": f"m{rng.choice(usual[user])}",
                                        "amount": round(amount, 2)}, 0, ts)
        if rng.random() < fraud_share:
            victim, at = rng.choice(users), ts
            for _ in range(rng.randint(3, 6)):
                at += rng.uniform(10.0, 120.0)
                heapq.heappush(frauds, (at, next(order), victim))
        ts += rng.expovariate(1.0 / mean_gap_s)
