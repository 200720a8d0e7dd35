"""The snapshots of a live updater's state directory, named by the consumer offsets they follow.

A snapshot is everything a live updater needs to resume (the model, the pending features, the
metrics, the counters) together with the *next* offset of every input partition it has read.
It is written atomically (a temporary file, ``fsync``, ``os.replace``, ``fsync`` of the
folder), so a ``kill -9`` leaves either the old file or the new one, never half of one.

Its file name holds a sequence number and a digest of its offsets, so the snapshot that
matches the offsets Kafka committed is found without opening the others:
``snapshot-00000042-3f2a9c1b7d0e.pkl``. A snapshot starts with a line naming its format
(``eventml-snapshot 2``), then a pickle of public, stable eventml types
(:class:`~eventml.live.state.UpdaterState`); a file of another format is refused with a sentence
before anything is unpickled. Snapshots are pickles, so only load the ones you wrote.

Examples
--------
>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> path = write_snapshot(folder, 1, {"events:0": 500}, {"model": "any picklable state"})
>>> path.name
'snapshot-00000001-9733cf97202b.pkl'
>>> find_snapshot(folder, {"events:0": 500}) == path, find_snapshot(folder, {"events:0": 7})
(True, None)
>>> print(load_snapshot(path).state["model"])
any picklable state
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import re
from pathlib import Path
from typing import Any

from eventml.errors import SnapshotError

__all__ = ["SnapshotError", "Snapshot", "offsets_digest", "write_snapshot", "find_snapshot", "load_snapshot",
           "list_snapshots", "prune_snapshots"]

_NAME = re.compile(r"^snapshot-(\d{8})-([0-9a-f]{12})\.pkl$")
FORMAT = 2
"""The snapshot format this eventml writes and reads (format 1, a bare pickle of private types, is refused)."""
_HEADER = f"eventml-snapshot {FORMAT}\n".encode()


@dataclasses.dataclass
class Snapshot:
    """One snapshot: its sequence number, the offsets it follows, and the saved state."""

    sequence: int
    offsets: dict[str, int]
    state: Any
    path: Path | None = None


def offsets_digest(offsets: dict[str, int]) -> str:
    """A short stable digest of ``{"topic:partition": next_offset}``.

    >>> offsets_digest({"b:0": 2, "a:0": 1}) == offsets_digest({"a:0": 1, "b:0": 2})
    True
    """
    text = ",".join(f"{key}={offsets[key]}" for key in sorted(offsets))
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_snapshot(folder: str | os.PathLike, sequence: int, offsets: dict[str, int], state: Any) -> Path:
    """Write a snapshot atomically and durably; return its path.

    Parameters
    ----------
    folder
        The state directory (created if missing).
    sequence
        The number of the transaction this snapshot closes (1 for the first).
    offsets
        ``{"topic:partition": next offset to read}`` for every input partition.
    state
        Any picklable object.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"snapshot-{sequence:08d}-{offsets_digest(offsets)}.pkl"
    tmp = folder / f".{path.name}.tmp"
    payload = {"sequence": sequence, "offsets": dict(offsets), "state": state}
    with open(tmp, "wb") as out:
        out.write(_HEADER)
        pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    _fsync_dir(folder)
    return path


def list_snapshots(folder: str | os.PathLike) -> list[Path]:
    """The snapshot files of a state directory, oldest sequence first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def find_snapshot(folder: str | os.PathLike, offsets: dict[str, int]) -> Path | None:
    """The snapshot written for exactly these offsets, or None."""
    digest = offsets_digest(offsets)
    found = [p for p in list_snapshots(folder) if _NAME.match(p.name).group(2) == digest]
    return found[-1] if found else None


def load_snapshot(path: str | os.PathLike) -> Snapshot:
    """Read a snapshot written by :func:`write_snapshot`.

    Raises
    ------
    SnapshotError
        If the file is missing, truncated, not a snapshot, or from another format version;
        the message names the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as src:
            header = src.readline(64)
            if header != _HEADER:
                raise SnapshotError(_wrong_format(path, header))
            payload = pickle.load(src)
    except FileNotFoundError:
        raise SnapshotError(f"snapshot {path} does not exist") from None
    except SnapshotError:
        raise
    except Exception as exc:  # unpickling can fail in many ways; all mean "unreadable"
        raise SnapshotError(f"snapshot {path} is unreadable ({type(exc).__name__}: {exc}); "
                            "it is not a complete eventml snapshot") from None
    if not isinstance(payload, dict) or "state" not in payload:
        raise SnapshotError(f"snapshot {path} is not an eventml snapshot of format {FORMAT}")
    return Snapshot(payload["sequence"], payload["offsets"], payload["state"], path)


def _wrong_format(path: Path, header: bytes) -> str:
    if header.startswith(b"eventml-snapshot "):
        found = header.decode("ascii", "replace").split()[-1]
        return (f"snapshot {path} has format {found}, and this eventml reads format {FORMAT}; "
                "use the eventml that wrote it, or a new state_dir to start over")
    if header.startswith(b"\x80"):  # a bare pickle: format 1
        return (f"snapshot {path} was written by an earlier eventml (snapshot format 1), whose state this one "
                "cannot read; finish that run with the eventml that wrote it, or start over with a new state_dir "
                "(the predictions already committed stay in Kafka)")
    return f"snapshot {path} is not an eventml snapshot (format {FORMAT})"


def prune_snapshots(folder: str | os.PathLike, keep: Path) -> int:
    """Delete every snapshot but ``keep`` (and leftover temporary files); return how many went."""
    removed = 0
    for path in Path(folder).iterdir():
        if (path != keep and _NAME.match(path.name)) or (path.name.startswith(".snapshot-") and path.suffix == ".tmp"):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
