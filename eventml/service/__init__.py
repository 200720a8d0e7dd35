"""Serve predictions over HTTP from the model(s) live updaters committed.

``em.serve(state_dir)`` (or ``eventml serve --state-dir D``) serves one live updater's model;
``em.serve(group=NAME, events_topic=TOPIC)`` (or ``eventml serve --group NAME --events TOPIC
[--scope global] [--key user]``) serves a group of live updaters (``eventml live --group NAME``): each
event is answered by the committed model of the partition Kafka's default partitioner gives its
record key (murmur2 of :func:`~eventml.events.record_key`: its id, or with ``key="user"`` its
``user``, as the producers placed the events), or by the group's one global model. An updater with
windows answers with the windowed features it would give the event, peeked from its committed window
state (at the event's ``ts``, else at the request's time). A FastAPI app on uvicorn:

=====================  ===================================================================
``POST /predict``      one wire-format event, or a list; answers the wire format's prediction
                       (``prediction``, ``proba``, ``model``, ``model_version``), or a list
``GET /model``         the committed state served: ``model_version``, ``sequence`` (the
                       updater's transaction), input ``offsets``, ``written_at``,
                       ``served_since``, ``events``, ``metrics``; for a group, the group and
                       these of every partition's model (``models``: ``{"0": ..., "1": ...}``
                       or ``{"global": ...}``)
``GET /healthz``       liveness, whether a model is ready, the watcher's and loop's counters
``GET /metrics``       Prometheus metrics: requests by route and status, their time, the served
                       model's version and age, swaps (:mod:`eventml.metrics.service`)
``GET /docs``          the OpenAPI docs
=====================  ===================================================================

Always the latest *committed* model: :mod:`~eventml.service.watcher` swaps to a snapshot only once
the updater's consumer group has committed exactly that snapshot's offsets in Kafka, and
:mod:`~eventml.service.group_watcher` reads a group's state topic ``read_committed``, authenticates
a state before unpickling it and serves it only if the group committed its offsets; so a state of
an aborted or unfinished transaction is never served. The swap is one reference assignment. With
``close_loop=True`` what is served goes back to Kafka (:mod:`~eventml.service.loop`; served events
keyed as the requests are placed, so in a group they land in the partition whose model answered), and
:func:`served_scores` tells the accuracy of what users were told.

Parts: :mod:`~eventml.service.watcher` (the committed model, the watchers' interface, the state
directory's watcher), :mod:`~eventml.service.group_watcher` (a group's state topic, one model per
partition), :mod:`~eventml.service.bodies` (request bodies and their 422s), :mod:`~eventml.service.app`
(the routes), :mod:`~eventml.service.loop` (closing the loop), :mod:`~eventml.service.server`
(uvicorn, in a thread or in the foreground).

Examples
--------
>>> import eventml as em
>>> server = em.serve("runs/live-state", port=0)  # doctest: +SKIP
>>> server.url  # doctest: +SKIP
'http://127.0.0.1:40123'
>>> server.stop()  # doctest: +SKIP
>>> server = em.serve(group="sea-models", events_topic="sea")  # doctest: +SKIP
"""

from eventml.service.bodies import BadRequest
from eventml.service.loop import served_scores
from eventml.service.server import PredictionService, ServerHandle, serve
from eventml.service.watcher import CommittedModel, ModelWatcher, PollingWatcher

__all__ = ["serve", "ServerHandle", "PredictionService", "PollingWatcher", "ModelWatcher", "CommittedModel",
           "served_scores", "BadRequest"]
