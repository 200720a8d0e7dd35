"""eventml.live.supervise without Kafka: a forked child's exit code passes through, a killed child is
started again, a child killed again and again ends the command with one sentence. Each case runs in a
fresh interpreter (run_restarting refuses to fork a process with threads, as pytest's may have)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time


def run(body: str) -> subprocess.CompletedProcess:
    script = textwrap.dedent('''
        import os, signal, sys
        from pathlib import Path
        from eventml.live.supervise import run_restarting
        ''') + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


def test_the_childs_exit_code_is_the_commands_and_an_exit_is_not_restarted():
    done = run("""
        sys.exit(run_restarting(lambda: 3))
        """)
    assert done.returncode == 3 and "killed" not in done.stderr


def test_a_killed_child_is_started_again_until_it_exits(tmp_path):
    done = run(f"""
        tries = Path({str(tmp_path / "tries")!r})
        def child():
            n = len(tries.read_text()) if tries.exists() else 0
            tries.write_text("x" * (n + 1))
            if n < 2:
                os.kill(os.getpid(), signal.SIGKILL)
            print("ran", n + 1)
            return 0
        sys.exit(run_restarting(child))
        """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ran 3"
    assert done.stderr.count("the updater was killed by SIGKILL; starting it again") == 2


def test_a_child_killed_again_and_again_ends_the_command_with_one_sentence():
    done = run("""
        from eventml.errors import EventmlError
        try:
            run_restarting(lambda: os.kill(os.getpid(), signal.SIGSEGV), max_restarts=2)
        except EventmlError as error:
            print(error)
        """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("the live updater was killed 3 times within a minute (the last time by SIGSEGV); "
                                   "not starting it again")


def test_sigterm_to_the_command_reaches_the_child_once_and_is_not_a_crash(tmp_path):
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import signal, sys, time
        from pathlib import Path
        from eventml.live.supervise import run_restarting
        def child():
            stops = []
            signal.signal(signal.SIGTERM, lambda *_: stops.append(1))
            Path({str(ready)!r}).write_text("")
            while not stops:
                time.sleep(0.01)
            time.sleep(0.2)  # a second SIGTERM would arrive meanwhile
            print("stopped after", len(stops), "signal(s)")
            return 0
        sys.exit(run_restarting(child))
        """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.terminate()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip() == "stopped after 1 signal(s)" and "killed" not in err
