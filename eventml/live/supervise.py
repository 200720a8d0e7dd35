"""``eventml live --restart-on-crash``: a killed updater starts again at once, from a warm process.

A new Python process needs about half a second to import eventml, NumPy, SciPy's special functions
and river's model modules before it can predict anything, which is most of what a restart by hand
after ``kill -9`` costs. With :func:`run_restarting` the command imports them once and runs the
updater in a child process forked from itself; when a signal kills the child (``kill -9``, the
OOM killer, a segfault), the parent forks a new one at once, which resumes from the committed
state as any restart does (exactly once: the same snapshot and offsets checks), without importing
anything.

- The child's exit code is the command's; a child that exits is not restarted (an error is not a
  crash). More than ``max_restarts`` kills within a minute end the command with an error.
- Ctrl-C or SIGTERM to the command is passed to the child once (it commits and stops; again to
  interrupt it); the child runs in a process group of its own, so a terminal's Ctrl-C reaches it
  only this way. If the parent dies, the child is sent SIGTERM (Linux).
- Needs ``os.fork`` (Linux, macOS), and a parent without threads: it forks before it makes any
  Kafka client.

Examples
--------
>>> run_restarting(lambda: 3)  # the child's exit code  # doctest: +SKIP
3
"""

from __future__ import annotations

import collections
import ctypes
import os
import signal
import sys
import threading
import time
import traceback
from typing import Callable

from eventml.errors import ConfigError, EventmlError
from eventml.live.commit import KILL_ENV

__all__ = ["run_restarting", "MAX_RESTARTS"]

MAX_RESTARTS = 5
"""Kills of the updater within a minute after which the command gives up."""

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1


def run_restarting(run: Callable[[], int], max_restarts: int = MAX_RESTARTS) -> int:
    """Run ``run()`` in a forked child, again at once each time a signal kills it; its exit code.

    Raises
    ------
    ConfigError
        Where ``os.fork`` does not exist (Windows).
    EventmlError
        If the child is killed more than ``max_restarts`` times within a minute.
    """
    if not hasattr(os, "fork"):
        raise ConfigError("--restart-on-crash needs os.fork (Linux or macOS); run eventml live without it")
    if threading.active_count() > 1:  # a forked child would inherit their locks, not the threads
        raise EventmlError("--restart-on-crash must fork before any thread starts")
    child = 0
    stop_signal = None
    kills: collections.deque = collections.deque()

    def forward(signum: int, frame: object) -> None:
        nonlocal stop_signal
        stop_signal = signum
        if child:
            os.kill(child, signum)

    previous = {signum: signal.signal(signum, forward) for signum in _STOP_SIGNALS}
    try:
        while True:
            # a stop signal that comes meanwhile waits until the child exists (then it is passed on), and
            # the child has its own handlers before it unblocks them
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            if stop_signal is not None:  # asked to stop before this start
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
                return 128 + stop_signal
            child = os.fork()
            if child == 0:
                _run_child(run, os.getppid())
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            os.environ.pop(KILL_ENV, None)  # the tests' kill hook: the first child only
            status = os.waitpid(child, 0)[1]  # retried by Python after a signal handler runs
            if os.WIFEXITED(status):
                return os.WEXITSTATUS(status)
            killed_by = signal.Signals(os.WTERMSIG(status)).name
            if stop_signal is not None:
                return 128 + os.WTERMSIG(status)
            now = time.monotonic()
            kills.append(now)
            while kills[0] < now - 60:
                kills.popleft()
            if len(kills) > max_restarts:
                raise EventmlError(f"the live updater was killed {len(kills)} times within a minute (the last "
                                   f"time by {killed_by}); not starting it again")
            print(f"eventml live: the updater was killed by {killed_by}; starting it again from its committed "
                  "state", file=sys.stderr, flush=True)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_child(run: Callable[[], int], parent: int) -> None:
    """In the forked child: run, then exit with its code (never returns)."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        os.setpgid(0, 0)  # a terminal's Ctrl-C goes to the parent, which passes it on once
        _terminate_with(parent)
        code = run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _terminate_with(parent: int) -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (elsewhere: nothing)."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request
        os.kill(os.getpid(), signal.SIGTERM)
