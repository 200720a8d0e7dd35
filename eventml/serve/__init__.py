"""Serve predictions over HTTP from the model a live updater committed.

``em.serve(state_dir)`` (or ``eventml serve --state-dir D``) starts a FastAPI app on uvicorn:

=====================  ===================================================================
``POST /predict``      one wire-format event, or a list; answers the wire format's prediction
                       (``prediction``, ``proba``, ``model``, ``model_version``), or a list
``GET /model``         the committed state served: ``model_version``, ``sequence`` (the
                       updater's transaction), input ``offsets``, ``written_at``,
                       ``served_since``, ``events``, ``metrics``
``GET /healthz``       liveness, whether a model is ready, the watcher's and loop's counters
``GET /docs``          the OpenAPI docs
=====================  ===================================================================

Always the latest *committed* model: :mod:`~eventml.serve.watcher` swaps to a snapshot only once
the updater's consumer group has committed exactly that snapshot's offsets in Kafka, so a snapshot
of an aborted or unfinished transaction is never served; the swap is one reference assignment. With
``close_loop=True`` what is served goes back to Kafka (:mod:`~eventml.serve.loop`), and
:func:`served_scores` tells the accuracy of what users were told.

Parts: :mod:`~eventml.serve.watcher` (the committed model and its watcher), :mod:`~eventml.serve.bodies`
(request bodies and their 422s), :mod:`~eventml.serve.app` (the routes), :mod:`~eventml.serve.loop`
(closing the loop), :mod:`~eventml.serve.server` (uvicorn, in a thread or in the foreground).

Examples
--------
>>> import eventml as em
>>> server = em.serve("runs/live-state", port=0)  # doctest: +SKIP
>>> server.url  # doctest: +SKIP
'http://127.0.0.1:40123'
>>> server.stop()  # doctest: +SKIP
"""

from eventml.serve.bodies import BadRequest
from eventml.serve.loop import served_scores
from eventml.serve.server import PredictionService, ServerHandle, serve
from eventml.serve.watcher import CommittedModel, ModelWatcher

__all__ = ["serve", "ServerHandle", "PredictionService", "ModelWatcher", "CommittedModel", "served_scores",
           "BadRequest"]
