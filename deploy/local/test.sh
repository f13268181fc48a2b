#!/usr/bin/env bash
# The test command: sets up everything from a fresh clone, then lints, type-checks and runs the
# whole suite. Integration tests start their own local Kafka unless KAFKA_BOOTSTRAP_SERVERS is
# set (or a Docker engine answers, for testcontainers) and stop it when they end.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
deploy/local/setup.sh
echo "== ruff"
.venv/bin/ruff check src tests bench deploy
.venv/bin/ruff format --check src tests bench deploy
echo "== mypy"
.venv/bin/mypy
echo "== schemas in sync"
.venv/bin/caseclock schemas --check
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
