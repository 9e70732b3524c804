#!/usr/bin/env bash
# Stops the one-node SLURM that start_slurm.sh started: slurmd, slurmctld, then
# munged, each through its own pid file (never by a name pattern). Cancels
# the jobs still queued first. Leaves the packages and /etc/slurm in place, so
# start_slurm.sh starts again in seconds. Pass --purge-state to also forget the
# job history (the controller's state directory).
set -euo pipefail

say() { echo "stop_slurm: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { say "needs root"; exit 1; }

stop_pid() {
    local name="$1" pidfile="$2" pid
    [ -f "$pidfile" ] || { say "${name}: no pid file ${pidfile}"; return 0; }
    pid="$(cat "$pidfile")"
    if ! kill -0 "$pid" 2>/dev/null; then
        say "${name}: not running"
        rm -f "$pidfile"
        return 0
    fi
    say "stopping ${name} (pid ${pid})"
    kill "$pid"
    for _ in $(seq 40); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
        sleep 0.25
    done
    say "${name} did not stop in 10 s: killing it"
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

if command -v scancel >/dev/null && [ -f /run/slurmctld.pid ] && kill -0 "$(cat /run/slurmctld.pid)" 2>/dev/null; then
    scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
fi
stop_pid slurmd /run/slurmd.pid
stop_pid slurmctld /run/slurmctld.pid
stop_pid munged /run/munge/munged.pid
if [ "${1:-}" = "--purge-state" ]; then
    say "removing /var/spool/slurmctld and /var/spool/slurmd"
    rm -rf /var/spool/slurmctld /var/spool/slurmd
fi
