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
echo "== pre-commit configuration"
.venv/bin/pre-commit validate-config .pre-commit-config.yaml
echo "== schemas in sync"
.venv/bin/caseclock schemas --check
echo "== pytest"
if [ "$#" -eq 0 ]; then
  # The whole suite: with a coverage report and a floor (branch coverage measured 83.7 % at
  # e04d52d; worker subprocesses are not measured,
  # so the floor guards the in-process code: core, contracts, service layer, replay).
  exec .venv/bin/python -m pytest --cov --cov-report=term --cov-fail-under=80
fi
exec .venv/bin/python -m pytest "$@"
