#!/usr/bin/env bash
# Prepare a fresh clone: a virtualenv with caseclock and its dev tools, Prometheus' promtool,
# and the Kafka jars (fetched with Maven). Idempotent and quiet when everything is in place.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($py --version)"
  "$py" -m venv .venv
fi
stamp=.venv/.caseclock-installed
# Reinstall when the dependencies or their locked versions changed since the last install.
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ]; then
  echo "setup: installing caseclock and dev dependencies (versions of requirements.lock) into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c requirements.lock -e '.[dev]'
  touch "$stamp"
fi
if ! command -v promtool >/dev/null 2>&1; then
  echo "setup: installing Debian's prometheus package (for promtool and the end-to-end tests)"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq >/dev/null
  $sudo_cmd apt-get install -y -qq prometheus >/dev/null
  # The package starts a system Prometheus on :9090; caseclock's tests run their own.
  $sudo_cmd systemctl stop prometheus >/dev/null 2>&1 || $sudo_cmd pkill -x prometheus || true
fi
if [ -x deploy/kafka/local-kafka.sh ] && [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  deploy/kafka/local-kafka.sh fetch
fi
