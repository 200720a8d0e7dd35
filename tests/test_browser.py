"""The browser test: a real JupyterLab, driven by headless chromium through Playwright, runs notebook
05 as a person would (Run > Run All Cells) against the real broker, and the page shows what a person
should see: no error and no stderr in any cell, the live figure redrawn in place while its cell runs,
every figure rendered. Saving the notebook afterwards leaves its file exactly as it was.

It needs Debian's chromium at /usr/bin/chromium (``./run.sh test`` installs it; Playwright's own
browser downloads are not used) and is skipped without it, except under CI, where it fails.
Deselect it with ``-m "not browser"``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest

from eventml.kafka import free_port
from eventml.notebooks import LAB_PRE_SAVE_HOOK

pytestmark = [pytest.mark.browser, pytest.mark.integration]

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_update_live.ipynb"
CHROMIUM = Path(os.environ.get("EVENTML_CHROMIUM", "/usr/bin/chromium"))
WATCHING = "watch(updater.start()"  # the source of the cell whose figure redraws in place
RUN_TIMEOUT_S = 240

# JupyterLab settings for the test: every cell in the page (no windowing, so each output can be
# inspected), and no news pop-up
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
}

# the state of the page, from the browser: each code cell's prompt, and the watching cell's outputs
PAGE_STATE_JS = """(watching) => {
    const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
    const prompts = cells.map(c => c.querySelector('.jp-InputArea-prompt').textContent.trim());
    const live = cells.find(c => c.querySelector('.jp-InputArea-editor').textContent.includes(watching));
    return {
        prompts,
        liveRunning: live ? live.querySelector('.jp-InputArea-prompt').textContent.includes('*') : false,
        liveOutputs: live ? live.querySelectorAll('.jp-OutputArea-child').length : -1,
        liveImages: live ? [...live.querySelectorAll('.jp-OutputArea-output img')].map(i => i.src) : [],
    };
}"""

KERNEL_IDLE_JS = """() => (document.querySelector('#jp-main-statusbar') || {textContent: ''}).textContent
    .includes('| Idle')"""

OUTPUTS_JS = """() => [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')].map(o => ({
    mime: o.dataset.mimeType || '',
    text: o.textContent.slice(0, 500),
}))"""

IMAGES_JS = """() => [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output img')].map(i => {
    const box = i.getBoundingClientRect();
    return {complete: i.complete, natural: [i.naturalWidth, i.naturalHeight], shown: [box.width, box.height]};
})"""


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"no chromium at {CHROMIUM}: ./run.sh test installs Debian's (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def set_parameters(path: Path, **values) -> None:
    """Give the parameters cell's NAME = value lines new values (their comments stay)."""
    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    for name, value in values.items():
        cell.source, found = re.subn(rf"^{name} = [^#\n]*?(\s*#.*)?$", lambda m: f"{name} = {value!r}{m.group(1) or ''}",
                                     cell.source, count=1, flags=re.M)
        assert found == 1, f"no parameter {name} in {path.name}"
    nbformat.write(nb, path)


def warm_group_coordinator(servers: str) -> None:
    """The updater's first committed-offsets fetch on a fresh broker can meet the group coordinator
    still loading (NOT_COORDINATOR); kafka-python waits for it here, so the notebook does not."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=servers, group_id=f"warm-{uuid.uuid4().hex[:8]}")
    try:
        consumer.committed(TopicPartition("warm-up", 0))
    finally:
        consumer.close()


@pytest.fixture
def lab(tmp_path, kafka_bootstrap):
    """A JupyterLab server on a free 127.0.0.1 port with a token, serving tmp_path/notebooks,
    started as ``./run.sh lab`` starts it; yields (base URL, token, its notebooks folder)."""
    root = tmp_path / "notebooks"
    root.mkdir()
    settings = tmp_path / "lab-settings"
    for name, value in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(value))
    port, token = free_port(), uuid.uuid4().hex
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", LAB_PRE_SAVE_HOOK, f"--LabApp.user_settings_dir={settings}",
               f"--LabApp.workspaces_dir={tmp_path / 'lab-workspaces'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime")}
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"JupyterLab ended: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s"
                time.sleep(0.2)
        yield url, token, root
    finally:
        server.terminate()  # shuts its kernels down too
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_notebook_05_runs_in_jupyterlab_with_a_live_figure_and_no_noise(chromium, lab, kafka_bootstrap, tmp_path):
    from playwright.sync_api import sync_playwright

    url, token, root = lab
    out = tmp_path / "out"
    copy = root / NOTEBOOK.name
    copy.write_bytes(NOTEBOOK.read_bytes())
    n = 6000
    set_parameters(copy, TOPIC=f"browser-{uuid.uuid4().hex[:8]}", PREDICTIONS_TOPIC=f"browser-p-{uuid.uuid4().hex[:8]}",
                   N_EVENTS=n, RATE=1000, DRIFT_AT=3000, CRASH_AT=1500, IDLE_TIMEOUT_S=2.0, OUTPUT_DIR=str(out))
    as_written = copy.read_bytes()
    warm_group_coordinator(kafka_bootstrap)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab/tree/{copy.name}?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
            page.wait_for_function(KERNEL_IDLE_JS, timeout=60_000)  # its kernel started, and waiting

            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.click(".lm-Menu-item[data-command='runmenu:run-all']")

            # while the cells run: the watching cell's image, each time it changes
            started, live_images, state = time.monotonic(), [], None
            while time.monotonic() - started < RUN_TIMEOUT_S:
                state = page.evaluate(PAGE_STATE_JS, WATCHING)
                if state["liveRunning"] and state["liveImages"] and state["liveImages"] != (live_images or [None])[-1]:
                    live_images.append(state["liveImages"])
                if state["prompts"] and all(re.fullmatch(r"\[\d+\]:", p) for p in state["prompts"]):
                    break
                if time.monotonic() - started > 30 and all(p == "[ ]:" for p in state["prompts"]):
                    page.screenshot(path=str(tmp_path / "jupyterlab.png"))
                    pytest.fail(f"no cell started within 30 s of Run All Cells (see {tmp_path / 'jupyterlab.png'})")
                time.sleep(0.1)
            ran_s = time.monotonic() - started
            outputs = page.evaluate(OUTPUTS_JS)
            images = page.evaluate(IMAGES_JS)
            page.screenshot(path=str(tmp_path / "jupyterlab.png"))

            # every cell ran, and none shows an error or anything on stderr
            assert all(re.fullmatch(r"\[\d+\]:", p) for p in state["prompts"]), \
                f"not every cell ran within {RUN_TIMEOUT_S} s: {state['prompts']}"
            noisy = [o for o in outputs if "stderr" in o["mime"] or "error" in o["mime"]]
            assert not noisy, f"cells show errors or stderr: {noisy}"

            # the live figure: one output, redrawn in place at least three times while its cell ran
            assert state["liveOutputs"] == 1 and len(state["liveImages"]) == 1
            assert len(live_images) >= 3, f"the live figure changed {len(live_images)} times in {ran_s:.0f} s"
            assert all(len(images_then) == 1 for images_then in live_images)

            # every figure rendered: the live one and the one drawn to keep, at least
            assert len(images) >= 2
            for image in images:
                assert image["complete"] and min(image["natural"]) > 0 and min(image["shown"]) > 0, image

            # saving keeps the file as it was: no outputs, no execution counts, no kernel details
            written_at = copy.stat().st_mtime_ns
            page.get_by_role("menuitem", name="File", exact=True).click()
            page.click(".lm-Menu-item[data-command='docmanager:save']")
            deadline = time.monotonic() + 30
            while copy.stat().st_mtime_ns == written_at:
                assert time.monotonic() < deadline, "JupyterLab did not save the notebook within 30 s"
                time.sleep(0.1)
            page.wait_for_selector(".lm-TabBar-tab.jp-mod-dirty", state="detached", timeout=30_000)
        finally:
            browser.close()
    assert copy.read_bytes() == as_written

    # and the run itself was the real thing: exactly once through the kill, live equal to offline
    figures = json.loads((out / "05_update_live.json").read_text())
    assert figures["killed_exit_code"] == -9 and figures["restarts"] == 1
    assert figures["events_produced"] == figures["predictions"] == figures["distinct_ids_predicted"] == n
    assert figures["repeated"] == figures["missing"] == 0
    assert figures["live_equals_offline"] is True
