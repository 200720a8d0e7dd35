#!/usr/bin/env bash
# eventml's three commands, on a fresh machine with Python 3.11+, a JDK 17+ and Maven:
#   ./run.sh notebooks   set up, start the local Kafka, run notebooks/ with papermill into runs/<timestamp>/
#   ./run.sh lab         set up, start the local Kafka, open JupyterLab on notebooks/ (URL and token printed)
#   ./run.sh test        set up (Debian's chromium and prometheus too, for the browser and Prometheus tests) and run
#                        every test against a real broker
# Extra arguments go to `eventml notebooks run`, to `jupyter lab` or to pytest.
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$python" -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
    echo "==> installing eventml, JupyterLab and the test tools into .venv (a few minutes the first time)"
    log=$(mktemp)
    if ! { .venv/bin/python -m pip install --quiet --upgrade pip &&
           .venv/bin/python -m pip install --quiet -e ".[dev,lab]"; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
    touch .venv/.installed
fi

start_kafka() {  # the local broker on 127.0.0.1:9092, unless EVENTML_BOOTSTRAP_SERVERS names another
    if [ -z "${EVENTML_BOOTSTRAP_SERVERS:-}" ]; then
        .venv/bin/eventml kafka start
    fi
}

# Test tools from Debian, never from a browser or binary download: Debian's chromium for the browser test
# (Playwright drives /usr/bin/chromium) and Debian's prometheus for the test that a real Prometheus scrapes the
# live updater. apt_install PACKAGE BINARY WHAT: installs PACKAGE unless BINARY exists (as root, with apt-get);
# returns 1, saying why, if it cannot.
apt_install() {
    if [ -x "$2" ]; then
        return 0
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "==> no $2: $3 is skipped (on Debian: sudo apt-get install $1)" >&2
        return 0
    fi
    echo "==> installing Debian's $1 for $3"
    log=$(mktemp)
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1"; } \
            >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

install_test_tools() {
    apt_install chromium /usr/bin/chromium "the browser test" || exit 1
    apt_install prometheus /usr/bin/prometheus "the Prometheus test" ||
        echo "==> Debian's prometheus could not be installed: the Prometheus test is skipped" >&2
}

command=${1:-}
shift || true
case "$command" in
    notebooks)
        start_kafka
        .venv/bin/eventml notebooks run "$@"
        ;;
    lab)
        start_kafka
        port=${EVENTML_LAB_PORT:-8888}
        token=${EVENTML_LAB_TOKEN:-$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(16))')}
        root=()
        if [ "$(id -u)" = 0 ]; then
            root=(--allow-root)
        fi
        if ! .venv/bin/python -c "import socket, sys; socket.create_server(('127.0.0.1', int(sys.argv[1]))).close()" \
                "$port" 2>/dev/null; then
            echo "port $port is in use: choose another, e.g. EVENTML_LAB_PORT=$((port + 1)) ./run.sh lab" >&2
            exit 1
        fi
        mkdir -p runs
        echo "==> JupyterLab on notebooks/ (runs by hand write to runs/manual; saving keeps no outputs in notebooks/)"
        echo "==> open http://127.0.0.1:$port/lab?token=$token   (Ctrl+C stops JupyterLab; the broker keeps running)"
        exec .venv/bin/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port="$port" \
            --ServerApp.port_retries=0 --IdentityProvider.token="$token" --ServerApp.root_dir=notebooks \
            --ContentsManager.pre_save_hook=eventml.notebooks.strip_outputs "${root[@]}" "$@"
        ;;
    test)
        install_test_tools
        # two workers share the session's broker (tests/conftest.py); EVENTML_TEST_WORKERS=0: one process
        .venv/bin/python -m pytest -n "${EVENTML_TEST_WORKERS:-2}" --dist loadgroup "$@"
        ;;
    *)
        echo "usage: ./run.sh notebooks [eventml notebooks run options] | ./run.sh lab [jupyter lab options]" \
             "| ./run.sh test [pytest options]" >&2
        exit 2
        ;;
esac
