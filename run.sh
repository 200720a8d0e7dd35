#!/usr/bin/env bash
# eventml's two commands, on a fresh machine with Python 3.11+, a JDK 17+ and Maven:
#   ./run.sh notebooks   set up, start the local Kafka, run notebooks/ with papermill into runs/<timestamp>/
#   ./run.sh test        set up and run the whole test suite (notebooks included) against a real broker
# Extra arguments go to `eventml notebooks run` or to pytest.
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$python" -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
    echo "==> installing eventml and its dependencies into .venv (a few minutes the first time)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[dev]"
    touch .venv/.installed
fi

command=${1:-}
shift || true
case "$command" in
    notebooks)
        if [ -z "${EVENTML_BOOTSTRAP_SERVERS:-}" ]; then
            .venv/bin/eventml kafka start
        fi
        .venv/bin/eventml notebooks run "$@"
        ;;
    test)
        .venv/bin/python -m pytest "$@"
        ;;
    *)
        echo "usage: ./run.sh notebooks [eventml notebooks run options] | ./run.sh test [pytest options]" >&2
        exit 2
        ;;
esac
