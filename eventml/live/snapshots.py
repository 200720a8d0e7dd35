"""The snapshots of a live updater's state directory, named by the consumer offsets they follow.

A snapshot is everything a live updater needs to resume (the model, the pending features, the
metrics, the counters) together with the *next* offset of every input partition it has read.
It is written atomically (a temporary file, then ``os.replace``), so a ``kill -9`` leaves either
the old file or the new one, never half of one, and it carries its length and a digest of its
bytes, checked before anything is unpickled.

Durability, and why a snapshot is not fsynced
---------------------------------------------
The live updater writes a snapshot before every commit (tens a second at a steady produce rate),
so it does not ``fsync`` it: an ``fsync`` waits for the disk, usually ~1 ms but 30-100 ms when
other processes write, and that wait held every prediction of the next transaction back.

- **A process crash** (``kill -9``, an out-of-memory kill, a crash of Python) loses nothing: once
  ``write()`` and ``os.replace`` have returned, the bytes and the new name are in the kernel's
  page cache, which belongs to the kernel, not the process; the next process to open the file
  reads them, and the kernel writes them to disk later. The updater commits the offsets only after
  both calls returned, so a snapshot for committed offsets is always there after a process crash.
- **An OS crash or a power loss** can lose the last seconds of writes: the newest snapshot may be
  missing, empty or partly zeros while Kafka (on other machines) has committed its offsets. The
  restore path then finds no snapshot for the committed offsets, or one whose length or digest is
  wrong, and refuses with a sentence (:class:`~eventml.errors.SnapshotError`) instead of resuming
  from anything else, which would repeat or skip predictions. ``updater.json`` (the updater's
  Kafka ids) is made durable once per run (:func:`sync_files`), so such a crash cannot turn a
  resumed run into a fresh one under a new name either.
- ``write_snapshot(..., fsync=True)`` is the durable variant (two fsyncs) for callers that need a
  snapshot to survive an OS crash.

Its file name holds a sequence number and a digest of its offsets, so the snapshot that
matches the offsets Kafka committed is found without opening the others:
``snapshot-00000042-3f2a9c1b7d0e.pkl``. A snapshot starts with a line naming its format
(``eventml-snapshot 4``), a line with the length and the BLAKE2b digest of the rest, then a pickle
of public, stable eventml types (:class:`~eventml.live.state.UpdaterState`); a file of another
format (formats 1 and 2 hold the metrics of an earlier eventml's Scorer, format 3 one model per state) or
whose length or digest is wrong is refused with a sentence before anything is unpickled. Snapshots are pickles, so only load the ones you wrote.

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
           "list_snapshots", "prune_snapshots", "sync_files"]

_NAME = re.compile(r"^snapshot-(\d{8})-([0-9a-f]{12})\.pkl$")
FORMAT = 4
"""The snapshot format this eventml writes and reads (formats 1 and 2, whose Scorers kept river's metric
objects, and 3, whose state held one model, are refused)."""
_HEADER = f"eventml-snapshot {FORMAT}\n".encode()


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


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


def sync_files(folder: str | os.PathLike, *names: str) -> None:
    """``fsync`` the named files of ``folder`` (those that exist) and the folder itself: after it
    returns they survive an OS crash."""
    folder = Path(folder)
    for name in names:
        try:
            fd = os.open(folder / name, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    _fsync_dir(folder)


def write_snapshot(folder: str | os.PathLike, sequence: int, offsets: dict[str, int], state: Any, *,
                   fsync: bool = False) -> Path:
    """Write a snapshot atomically; return its path.

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
    fsync
        Also wait until the file and its name are on disk (two fsyncs), so that it survives an OS
        crash. Without it, the snapshot survives any crash of the process (see the module docstring).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"snapshot-{sequence:08d}-{offsets_digest(offsets)}.pkl"
    tmp = folder / f".{path.name}.tmp"
    data = pickle.dumps({"sequence": sequence, "offsets": dict(offsets), "state": state},
                        protocol=pickle.HIGHEST_PROTOCOL)
    with open(tmp, "wb") as out:
        out.write(_HEADER + f"{len(data)} {_digest(data)}\n".encode() + data)
        if fsync:
            out.flush()
            os.fsync(out.fileno())
    os.replace(tmp, path)
    if fsync:
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
            if header == _HEADER:
                payload = pickle.loads(_checked(path, src.readline(80), src.read()))
            else:
                raise SnapshotError(_wrong_format(path, header))
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


def _checked(path: Path, line: bytes, data: bytes) -> bytes:
    """The pickle of a format-4 snapshot, once its length and digest match the ones it was written with."""
    length, _, digest = line.decode("ascii", "replace").strip().partition(" ")
    if not length.isdigit() or len(data) != int(length) or _digest(data) != digest:
        found = f"{len(data)} of {length} bytes" if length.isdigit() and len(data) != int(length) else "wrong digest"
        raise SnapshotError(
            f"snapshot {path} is damaged ({found}): the machine probably stopped (an OS crash or a power loss) "
            "before the file reached the disk, since snapshots are not fsynced; resuming from another snapshot "
            "would repeat or skip predictions, so start over with a new state_dir (the predictions already "
            "committed stay in Kafka)")
    return data


def _wrong_format(path: Path, header: bytes) -> str:
    found = header.decode("ascii", "replace").split()[-1] if header.startswith(b"eventml-snapshot ") else None
    if header.startswith(b"\x80") or found in ("1", "2", "3"):  # format 1 is a bare pickle
        return (f"snapshot {path} was written by an earlier eventml (snapshot format {found or 1}), whose state "
                "this one cannot read; finish that run with the eventml that wrote it, or start over with a new "
                "state_dir (the predictions already committed stay in Kafka)")
    if found is not None:
        return (f"snapshot {path} has format {found}, and this eventml reads format {FORMAT}; "
                "use the eventml that wrote it, or a new state_dir to start over")
    what = "is empty" if not header else "is not an eventml snapshot"
    return (f"snapshot {path} {what} (format {FORMAT}): if the machine stopped (an OS crash or a power loss) "
            "right after it was written, it never reached the disk, since snapshots are not fsynced; start over "
            "with a new state_dir (the predictions already committed stay in Kafka)")


def prune_snapshots(folder: str | os.PathLike, keep: Path) -> int:
    """Delete every snapshot but ``keep`` (and leftover temporary files); return how many went."""
    removed = 0
    for path in Path(folder).iterdir():
        if (path != keep and _NAME.match(path.name)) or (path.name.startswith(".snapshot-") and path.suffix == ".tmp"):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
