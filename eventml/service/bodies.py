"""The body of ``POST /predict``: one wire-format event or a list of them, checked field by field.

The rules are the wire format's (:mod:`eventml.events`): ``id`` a non-empty string, ``features``
an object of numbers, strings, booleans or null, ``label`` and ``ts`` optional. A body that breaks
one is a :class:`BadRequest` whose ``loc`` names the field the way FastAPI's own 422 answers do
(``["body", 3, "features", "color"]`` for the 4th event of a list).

Examples
--------
>>> events, many = parse_events(b'{"id": "a", "features": {"x": 1, "c": "red"}}')
>>> events[0].features, many
({'x': 1, 'c': 'red'}, False)
>>> try:
...     parse_events(b'[{"id": "a", "features": {"x": 1}}, {"id": "b", "features": {"x": [1]}}]')
... except BadRequest as error:
...     print(error.loc, error.reason)
['body', 1, 'features', 'x'] bad_feature_value
"""

from __future__ import annotations

from typing import Any

import orjson

from eventml.errors import EventFormatError, EventmlError
from eventml.events import Event, validate_event

__all__ = ["BadRequest", "parse_events", "MAX_EVENTS"]

MAX_EVENTS = 10_000  # events in one request at most

_FIELD_OF = {"missing_id": "id", "bad_id": "id", "missing_features": "features", "bad_features": "features",
             "bad_label": "label", "bad_ts": "ts"}


class BadRequest(EventmlError, ValueError):
    """A request body that is not one event (or a list of events) of the wire format.

    ``loc`` is where (FastAPI's convention: ``["body", index, field, feature]``), ``reason`` the
    wire format's reason code (``bad_feature_value``, ``missing_id``, ...), ``message`` a sentence.
    """

    def __init__(self, loc: list[Any], reason: str, message: str):
        super().__init__(message)
        self.loc, self.reason, self.message = loc, reason, message

    def detail(self) -> list[dict[str, Any]]:
        """The ``detail`` of a 422 answer."""
        return [{"loc": self.loc, "msg": self.message, "type": self.reason}]


def _event(obj: Any, where: list[Any]) -> Event:
    if not isinstance(obj, dict):
        raise BadRequest(where, "not_object", f"{'event %d: ' % where[1] if len(where) > 1 else ''}an event must be a JSON object, got a JSON {type(obj).__name__}")
    try:
        validate_event(obj)
    except EventFormatError as error:
        loc = [*where, _FIELD_OF.get(error.reason, "features")]
        if error.reason == "bad_feature_value":
            loc.append(next(name for name, value in obj["features"].items()
                            if not (value is None or isinstance(value, (int, float, str, bool)))))
        where_text = f"event {where[1]}: " if len(where) > 1 else ""
        raise BadRequest(loc, error.reason, where_text + error.message) from None
    return Event(obj["id"], obj["features"], obj.get("label"), obj.get("ts"))


def parse_events(body: bytes) -> tuple[list[Event], bool]:
    """The events of a request body, and whether it was a list.

    Raises
    ------
    BadRequest
        For a body that is not JSON, not an object or a list of objects, an empty or too long list,
        or an event that breaks the wire format (its ``loc`` names the field).
    """
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(["body"], "not_json", f"the body is not JSON: {exc}") from None
    if isinstance(obj, list):
        if not obj:
            raise BadRequest(["body"], "empty", "the body is an empty list; send one event or a list of events")
        if len(obj) > MAX_EVENTS:
            raise BadRequest(["body"], "too_many", f"the body holds {len(obj)} events; at most {MAX_EVENTS} per request")
        return [_event(item, ["body", i]) for i, item in enumerate(obj)], True
    if obj is None:
        raise BadRequest(["body"], "empty", "the body is empty; send one event or a list of events as JSON")
    return [_event(obj, ["body"])], False
