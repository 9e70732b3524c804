#!/usr/bin/env bash
# A one-node SLURM on this machine, for tests/test_cluster.py and for trying the
# slurm profile by hand. Idempotent: installs what is missing, (re)writes the
# config, starts only the daemons that are not running, and waits until the node
# is idle. Needs root and a Debian/Ubuntu apt.
#
# The setup is the lightest one the snakemake SLURM executor accepts:
#   - no cgroups (proctrack/linuxproc, task/none): works in containers and sandboxes;
#   - no accounting database (accounting_storage/none, so `sacct` answers
#     nothing); job completions go to a text file (jobcomp/filetxt) instead.
#     The executor then has to poll with `squeue`, which lists finished jobs for
#     MinJobAge seconds: run snakemake with `--slurm-status-command squeue`.
#
# Settings (environment): MFSWEEP_SLURM_PARTITION (default "debug"), MFSWEEP_SLURM_WAIT_S
# (60; not SLURM_* names, which srun and sbatch read themselves).
set -euo pipefail

PARTITION="${MFSWEEP_SLURM_PARTITION:-debug}"
WAIT_S="${MFSWEEP_SLURM_WAIT_S:-60}"
CONF=/etc/slurm/slurm.conf
STATE=/var/spool/slurmctld
SPOOL=/var/spool/slurmd
LOGS=/var/log/slurm

say() { echo "start_slurm: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (it installs packages and starts daemons)"

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null || die "apt-get not found: install slurm-wlm and munge by hand"
    say "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed (no network?)"
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
        || die "apt-get install slurm-wlm munge failed"
}

running() { pgrep -x "$1" >/dev/null; }

start_munge() {
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null; then
            mungekey --create --force
        else
            dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        fi
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    if ! running munged; then
        say "starting munged"
        runuser -u munge -- /usr/sbin/munged
    fi
    for _ in $(seq 20); do
        munge -n </dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.5
    done
    die "munge does not answer (see /var/log/munge/munged.log)"
}

write_config() {
    local node node_line memory
    node="$(hostname -s)"
    # slurmd -C reports this machine exactly as slurmd will see it; a node whose
    # configured memory or CPUs exceed what slurmd finds is drained.
    node_line="$(slurmd -C | head -n 1)"
    memory="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")"
    # Leave 5% to the system so that jobs asking for all of it still start.
    memory=$((memory * 95 / 100))
    node_line="$(sed "s/RealMemory=[0-9]*/RealMemory=${memory}/" <<<"$node_line")"
    mkdir -p /etc/slurm "$STATE" "$SPOOL" "$LOGS"
    cat >"$CONF.new" <<CONF
# Written by tests/cluster/start_slurm.sh: a one-node test cluster.
ClusterName=mfsweep
SlurmctldHost=${node}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
StateSaveLocation=${STATE}
SlurmdSpoolDir=${SPOOL}
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=${LOGS}/slurmctld.log
SlurmdLogFile=${LOGS}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: process tracking by /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
# No accounting database; completed jobs are written to a text file, and
# squeue keeps listing a finished job for MinJobAge seconds.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${LOGS}/jobcomp.log
MinJobAge=300
# Cores and memory are consumable: several jobs share the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A job that names no memory gets 1 GiB a CPU, not the whole node.
DefMemPerCPU=1024
SchedulerType=sched/backfill
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
Waittime=0
${node_line} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
    if [ -f "$CONF" ] && cmp -s "$CONF" "$CONF.new"; then
        rm "$CONF.new"
    else
        mv "$CONF.new" "$CONF"
        CONFIG_CHANGED=1
    fi
    # No cgroup.conf: slurmd 22.05 loads a cgroup plugin by itself (autodetect)
    # but uses it for nothing with the plugins above; "CgroupPlugin=disabled"
    # only exists from SLURM 23.02 on, and 22.05 refuses to start with it.
}

start_daemons() {
    if [ "${CONFIG_CHANGED:-0}" = 1 ] && { running slurmctld || running slurmd; }; then
        say "configuration changed: restarting slurmctld and slurmd"
        pkill_daemon slurmd
        pkill_daemon slurmctld
    fi
    if ! running slurmctld; then
        say "starting slurmctld"
        /usr/sbin/slurmctld
    fi
    if ! running slurmd; then
        say "starting slurmd"
        /usr/sbin/slurmd
    fi
}

# Stops one daemon through its pid file (never by a pattern over all processes).
pkill_daemon() {
    local pidfile="/run/$1.pid" pid
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 40); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.25
    done
    kill -9 "$pid" 2>/dev/null || true
}

wait_for_idle() {
    local node state
    node="$(hostname -s)"
    for _ in $(seq $((WAIT_S * 2))); do
        state="$(sinfo -h -n "$node" -o %T 2>/dev/null | head -n 1 || true)"
        case "$state" in
            idle|mixed|allocated) say "node ${node} is ${state} in partition ${PARTITION}"; return ;;
            drain*|down*)
                scontrol update NodeName="$node" State=RESUME 2>/dev/null || true ;;
        esac
        sleep 0.5
    done
    die "node ${node} not idle after ${WAIT_S}s (state '${state:-none}'); see ${LOGS}/slurmctld.log and ${LOGS}/slurmd.log"
}

install_packages
start_munge
write_config
start_daemons
wait_for_idle
