#!/usr/bin/env bash
# Installs and starts the two AMQP 1.0 brokers the interop tests run against
# (RabbitMQ 3.x with the rabbitmq_amqp1_0 plugin, and the Qpid Proton example
# broker), each on a free loopback port, and yields their URLs.
#
#   bash .ci/interop-brokers.sh [ENV_FILE]     start; ENV_FILE defaults to /tmp/nitrogen-interop.env
#   bash .ci/interop-brokers.sh stop           stop both brokers started by an earlier call
#
# On success it writes to ENV_FILE, and prints on stdout, exactly:
#   export RABBITMQ_AMQP_URL=amqp://guest:guest@127.0.0.1:<port>
#   export QPID_AMQP_URL=amqp://127.0.0.1:<port>
# so a CI script can `source` the file (or `eval "$(bash .ci/interop-brokers.sh)"`).
# Progress goes to stderr. Exit status is non-zero if either broker fails to start.
set -euo pipefail

STATE=${NITROGEN_INTEROP_DIR:-/tmp/nitrogen-interop}
log() { echo "interop-brokers: $*" >&2; }

stop() {
  for name in qpid rabbit epmd; do
    if [ -f "$STATE/$name.pid" ]; then
      pid=$(cat "$STATE/$name.pid")
      # Each broker runs in its own session (setsid): end its whole process group.
      kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
      rm -f "$STATE/$name.pid"
      log "stopped $name (pid $pid)"
    fi
  done
}

if [ "${1:-}" = "stop" ]; then stop; exit 0; fi
ENV_FILE=${1:-/tmp/nitrogen-interop.env}

PACKAGES="rabbitmq-server python3-qpid-proton libqpid-proton11-dev-examples"
if ! dpkg -s $PACKAGES >/dev/null 2>&1; then
  log "installing $PACKAGES"
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES >&2
fi

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # name port pid seconds
  for _ in $(seq 1 $(( $4 * 5 ))); do
    if /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $2), 0.5).close()" 2>/dev/null; then return 0; fi
    if ! kill -0 "$3" 2>/dev/null; then log "$1 exited during start-up"; return 1; fi
    sleep 0.2
  done
  log "$1 did not listen on port $2 within $4 s"
  return 1
}

stop
mkdir -p "$STATE/rabbit"

# ---- RabbitMQ: the AMQP 1.0 plugin shares the node's AMQP listener (protocol chosen by header).
RABBIT_PORT=$(free_port)
export RABBITMQ_NODENAME=nitrogen-interop@localhost
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$RABBIT_PORT
export RABBITMQ_DIST_PORT=$(free_port)
export ERL_EPMD_PORT=$(free_port)
export RABBITMQ_MNESIA_BASE=$STATE/rabbit/mnesia
export RABBITMQ_LOG_BASE=$STATE/rabbit/log
export RABBITMQ_ENABLED_PLUGINS_FILE=$STATE/rabbit/enabled_plugins
export RABBITMQ_CONFIG_FILE=$STATE/rabbit/rabbitmq
# Our own epmd in the foreground on a private port, so stop can end it (a daemonised one would linger).
setsid nohup epmd -port "$ERL_EPMD_PORT" > "$STATE/epmd.out" 2>&1 &
echo $! > "$STATE/epmd.pid"
# Management and Prometheus listeners would take fixed ports; only AMQP is needed.
cat > "$STATE/rabbit/rabbitmq.conf" <<CONF
loopback_users = none
listeners.tcp.default = 127.0.0.1:$RABBIT_PORT
CONF
rm -rf "$RABBITMQ_MNESIA_BASE"
/usr/lib/rabbitmq/bin/rabbitmq-plugins --offline enable rabbitmq_amqp1_0 >&2
log "starting RabbitMQ on 127.0.0.1:$RABBIT_PORT"
setsid nohup /usr/lib/rabbitmq/bin/rabbitmq-server > "$STATE/rabbit/server.out" 2>&1 &
echo $! > "$STATE/rabbit.pid"
wait_port RabbitMQ "$RABBIT_PORT" "$(cat "$STATE/rabbit.pid")" 90 || { tail -20 "$STATE/rabbit/server.out" >&2; exit 1; }
# The port opens before plugins finish booting: wait until the node says it is up.
/usr/lib/rabbitmq/bin/rabbitmqctl await_startup --timeout 60 >&2

# ---- Qpid Proton example broker (in-memory queues created on first use; SASL ANONYMOUS).
QPID_PORT=$(free_port)
log "starting Qpid Proton broker on 127.0.0.1:$QPID_PORT"
setsid nohup /usr/bin/python3 /usr/share/proton/examples/python/broker.py -a "127.0.0.1:$QPID_PORT" > "$STATE/qpid.out" 2>&1 &
echo $! > "$STATE/qpid.pid"
wait_port Qpid "$QPID_PORT" "$(cat "$STATE/qpid.pid")" 30 || { cat "$STATE/qpid.out" >&2; exit 1; }

{
  echo "export RABBITMQ_AMQP_URL=amqp://guest:guest@127.0.0.1:$RABBIT_PORT"
  echo "export QPID_AMQP_URL=amqp://127.0.0.1:$QPID_PORT"
} > "$ENV_FILE"
cat "$ENV_FILE"
log "brokers ready; URLs written to $ENV_FILE"
