#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the Slurm tests and for trying the cluster path on
# a laptop (docs/cluster.md). Run as root; idempotent: a second run finds the node up and returns.
#   installs slurm-wlm and munge from Debian's packages if they are missing,
#   writes /etc/slurm/slurm.conf for this host (no cgroups, no accounting),
#   starts munged, slurmctld and slurmd, and waits until sinfo shows the node idle.
# SLURM_CPUS (default: 4 x the cores) is what the node offers: jobs share the cores, so the tests'
# jobs can run side by side.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "error: $0 installs packages and starts daemons: run it as root (sudo $0)" >&2
    exit 2
fi
host=$(hostname -s)
cpus=${SLURM_CPUS:-$(($(nproc) * 4))}
memory=$(($(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 9 / 10))

node_idle() { sinfo -h -n "$host" -o %t 2>/dev/null | grep -qx idle; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    echo "slurm: installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || echo "slurm: apt-get update failed; installing from the cached package lists" >&2
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# munge: the key the package made (or a new one), its daemon as the munge user
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge
if ! munge -n >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
fi

mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
wanted=$(mktemp)
cat >"$wanted" <<CONF
# written by scripts/one_node_slurm.sh: one node, no cgroups, no accounting
ClusterName=salseg
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
# a requeued job may start again after 15 s (Slurm's default: 120)
AuthInfo=cred_expire=15
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
SlurmdParameters=config_overrides
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# finished jobs stay visible to scontrol/squeue for 10 min (there is no sacct)
MinJobAge=600
KillWait=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

if ! cmp -s "$wanted" /etc/slurm/slurm.conf; then
    mv "$wanted" /etc/slurm/slurm.conf
    chmod 0644 /etc/slurm/slurm.conf
    # a changed configuration: restart the daemons on it
    pkill -x slurmd || true
    pkill -x slurmctld || true
    while pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; do sleep 0.2; done
else
    rm -f "$wanted"
    if node_idle; then
        echo "slurm: $host is up and idle"
        exit 0
    fi
fi
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 60); do
    if node_idle; then
        echo "slurm: $host is up and idle ($cpus CPUs, partition debug)"
        exit 0
    fi
    scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
    sleep 1
done
echo "error: slurm did not bring $host up in 60 s; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
sinfo -N -l >&2 || true
exit 1
