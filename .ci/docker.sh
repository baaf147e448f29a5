#!/usr/bin/env bash
# A throwaway Docker engine for CI: `start` runs dockerd with no bridge and no iptables
# rules (containers use host networking only), its data root, socket and pidfile under a
# fresh temp dir, and prints the `export` lines a caller evals; `stop DIR` stops exactly
# that dockerd by its recorded PID and removes the dir.
#
#   eval "$(.ci/docker.sh start)"; trap '.ci/docker.sh stop "$ASM_READY_DOCKERD_DIR"' EXIT
set -euo pipefail

DOCKERD=${DOCKERD:-dockerd}
# The CLI that ships with the Debian engine: it drives that engine's built-in BuildKit
# (DOCKER_BUILDKIT=1) without a buildx plugin, which a newer CLI on PATH would require.
DEBIAN_DOCKER_CLI=/usr/bin/docker

log() { echo "docker.sh: $*" >&2; }

start() {
    command -v "$DOCKERD" >/dev/null || { log "no dockerd: apt-get install docker.io"; exit 2; }
    local dir
    dir=$(mktemp -d /tmp/asm-ready-dockerd.XXXXXX)
    local sock="$dir/docker.sock"
    # --exec-root must be short (socket paths) and per-instance, like everything else here.
    "$DOCKERD" \
        --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
        --data-root "$dir/data" --exec-root "$dir/exec" \
        --pidfile "$dir/dockerd.pid" --host "unix://$sock" \
        --log-level warn >"$dir/dockerd.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/launcher.pid"
    local cli=docker
    [[ -x $DEBIAN_DOCKER_CLI ]] && cli=$DEBIAN_DOCKER_CLI
    local waited=0
    until DOCKER_HOST="unix://$sock" "$cli" version >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null || ((waited >= 60)); then
            log "dockerd did not come up (log follows)"
            tail -n 30 "$dir/dockerd.log" >&2 || true
            kill "$pid" 2>/dev/null || true
            exit 1
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    log "dockerd $pid up on unix://$sock"
    echo "export ASM_READY_DOCKERD_DIR=$dir"
    echo "export DOCKER_HOST=unix://$sock"
    [[ $cli == "$DEBIAN_DOCKER_CLI" ]] && echo "export BUILDER=$DEBIAN_DOCKER_CLI"
    return 0
}

# PIDs whose command line names DIR: the engine's containerd and shims, nothing else.
instance_pids() {
    local dir=$1 pid
    for pid in /proc/[0-9]*; do
        pid=${pid#/proc/}
        [[ $pid == "$$" ]] && continue
        # 2>/dev/null first: a process may exit between the glob and the read.
        if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$dir/"; then
            echo -n "$pid "
        fi
    done
}

stop() {
    local dir=${1:?usage: docker.sh stop DIR}
    [[ -d $dir ]] || return 0
    local pid=""
    [[ -f $dir/dockerd.pid ]] && pid=$(cat "$dir/dockerd.pid")
    [[ -z $pid && -f $dir/launcher.pid ]] && pid=$(cat "$dir/launcher.pid")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        # Containers left running would keep the data root busy: remove them first.
        local cli=docker
        [[ -x $DEBIAN_DOCKER_CLI ]] && cli=$DEBIAN_DOCKER_CLI
        local running
        running=$(DOCKER_HOST="unix://$dir/docker.sock" "$cli" ps -q 2>/dev/null || true)
        if [[ -n $running ]]; then
            # shellcheck disable=SC2086  # one id per word
            DOCKER_HOST="unix://$dir/docker.sock" "$cli" rm -f $running >/dev/null 2>&1 || true
        fi
        kill -TERM "$pid"
        for _ in $(seq 1 60); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "dockerd $pid ignored TERM for 30s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "dockerd $pid stopped"
    fi
    # dockerd's own containerd (started with a config under DIR) may outlive it briefly and
    # recreate its sockets; wait for the processes of this instance only, found by DIR.
    for _ in $(seq 1 40); do
        local left
        left=$(instance_pids "$dir")
        [[ -z $left ]] && break
        sleep 0.25
    done
    left=$(instance_pids "$dir")
    if [[ -n $left ]]; then
        log "killing leftover processes of this engine: $left"
        # shellcheck disable=SC2086  # one pid per word
        kill -KILL $left 2>/dev/null || true
    fi
    # Overlay mounts of a killed engine may linger; unmount what is under the dir only.
    { grep -F " $dir/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r mnt; do
        umount -l "$mnt" 2>/dev/null || true
    done
    rm -rf "$dir" 2>/dev/null || { sleep 1; rm -rf "$dir"; }
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
*)
    echo "usage: $0 start | stop DIR" >&2
    exit 2
    ;;
esac
