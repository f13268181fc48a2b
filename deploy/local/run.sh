#!/usr/bin/env bash
# The run command: a local Kafka, one caseclock worker under the accelerated demo policy, a demo
# producer playing a support desk, and a live console of alerts as they fire. Ctrl-C stops all
# of it (the broker included). CASECLOCK_DEMO_SECONDS=N stops by itself after N seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
deploy/local/setup.sh
port=${KAFKA_PORT:-19092}
export KAFKA_PORT=$port KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
started=""
cleanup() {
  if [ -n "$started" ]; then deploy/kafka/local-kafka.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ -z "${CASECLOCK_BOOTSTRAP_SERVERS:-}" ]; then
  CASECLOCK_BOOTSTRAP_SERVERS=$(deploy/kafka/local-kafka.sh start)
  started=1
  export CASECLOCK_BOOTSTRAP_SERVERS
fi
args=()
if [ -n "${CASECLOCK_DEMO_SECONDS:-}" ]; then args+=(--seconds "$CASECLOCK_DEMO_SECONDS"); fi
unset CASECLOCK_DEMO_SECONDS  # the script's own knob, not a worker setting
.venv/bin/caseclock demo "${args[@]}"
