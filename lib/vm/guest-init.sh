#!/bin/bash
# PID 1 of the iommufd-conformance test guest. The root file system is the
# host's, shared read-only over 9p; the one writable place is the results
# folder, mounted over its own host path so that paths mean the same thing on
# both sides. The host leaves the job in $IOMMUFD_CONFORMANCE_RESULTS/.vm/
# (the kernel passes unknown name=value arguments of its command line to init
# as environment variables): fstab, job.sh, job.env, cwd. This script mounts,
# runs the job, records its exit code and the kernel log there, and powers
# off. Every process it starts costs tens of milliseconds under TCG, so it
# starts few. A job that waits for its go itself ($vm/start-early: the
# suites' Node, lib/vm/guest-loader.cjs) is started as soon as /proc is
# mounted (Node reads /proc/meminfo, /proc/self/cgroup and /proc/self/maps as
# it starts: its heap limits and its stack come from them; of /sys, only the
# memory cgroup's limit, which no guest mounts, so /sys or not it finds none)
# and let go once every mount is made and checked: Node's start, under TCG
# about a second of QEMU translating the code it runs for the first time,
# overlaps the other mount processes.
#
# It must work on every kernel the tool builds and never hang: each fstab
# entry is mounted on its own (`mount -a -T FILE` of Debian 12's util-linux
# prints "ignored" for every entry and mounts nothing under 7.x kernels), each
# mount is checked, a failure is reported at once with its cause, and the
# power-off falls back step by step to something that cannot fail.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export TMPDIR=/run/tmp HOME=/run/home TERM=dumb LANG=C.UTF-8

MARK=@@iommufd-conformance:
results=$IOMMUFD_CONFORMANCE_RESULTS
vm=$results/.vm

power_off() {
  sync
  # 1. sysrq: needs /proc; mount it here if that is what failed.
  [ -w /proc/sysrq-trigger ] || mount -t proc proc /proc 2>/dev/null
  if [ -w /proc/sysrq-trigger ]; then
    echo o > /proc/sysrq-trigger
    # Wait with shell builtins only: /bin/sleep lives on the 9p root, which can
    # fail (EIO) once the power-off has begun.
    local until=$((SECONDS + 10))
    while ((SECONDS < until)); do :; done
  fi
  # 2. reboot(2) with RB_POWER_OFF, no sysrq and no /proc needed (systemctl
  #    forced twice calls it at once, without talking to any service manager).
  poweroff -f -f 2>/dev/null
  # 3. Last resort: init exits, the kernel panics, and panic=-1 on the command
  #    line reboots it, which QEMU's -no-reboot turns into an exit. The host
  #    reports a crash; the error line above says why.
  echo "${MARK}error power-off failed: init exits so that the kernel stops the guest"
  exit 1
}

fail() {
  echo "${MARK}error $*"
  power_off
}

# Mount the fstab's entries one by one, in order (sysfs before debugfs on it).
# The fstab is read through the read-only root before the results folder is
# mounted over it.
[ -r "$vm/fstab" ] || fail "cannot read $vm/fstab through the 9p root (IOMMUFD_CONFORMANCE_RESULTS='$results')"
mapfile -t entries < "$vm/fstab" || fail "cannot read $vm/fstab"

# Runs the job in a subshell (not a second bash: one exec less before it
# starts), in its folder, with its environment, stdin /dev/null.
run_job() {
  cd "$(< "$vm/cwd")" || cd /
  set -a
  . "$vm/job.env"
  set +a
  . "$vm/job.sh"
}
# An early job runs as a coprocess (a pipe of bash's own: a process
# substitution needs /dev/fd, which nothing here creates): the read end of
# its stdin pipe becomes its fd 3 (IOMMUFD_CONFORMANCE_START_FD=3), its stdout
# is the console again (fd 5, saved for it), and this init keeps the write end.
job=
start_early_job() {
  exec 5>&1
  coproc JOB {
    exec 3<&0 < /dev/null 1>&5 5>&-
    export IOMMUFD_CONFORMANCE_START_FD=3
    run_job
  }
  # At once: bash unsets JOB and JOB_PID when it reaps the coprocess ($! stays).
  go_fd=${JOB[1]}
  job=$!
  exec 5>&-
}
early=0
[ -e "$vm/start-early" ] && early=1

targets=()
for entry in "${entries[@]}"; do
  read -r src dst type opts _ <<< "$entry"
  [ -z "$src" ] || [ "${src:0:1}" = '#' ] && continue
  if ! err=$(mount -t "$type" -o "$opts" "$src" "$dst" 2>&1); then
    fail "mount -t $type -o $opts $src $dst failed: ${err:-no message}"
  fi
  targets+=("$dst")
  if [ "$early" = 1 ] && [ -z "$job" ] && [ "$dst" = /proc ]; then
    start_early_job
  fi
done
# Check each mount point in /proc/mounts (read with builtins): a mount that
# "succeeded" without mounting anything is caught here, not by a silent job.
[ -r /proc/mounts ] || fail "/proc/mounts is not readable after mounting $vm/fstab"
mounted=$(< /proc/mounts)
for dst in "${targets[@]}"; do
  case "$mounted" in
    *" $dst "*) ;;
    *) fail "$dst is not in /proc/mounts after mounting it" ;;
  esac
done
mkdir -p "$TMPDIR" "$HOME" || fail "cannot create $TMPDIR and $HOME on the tmpfs"
# /proc/uptime's first field is seconds since the kernel started.
read -r uptime _ < /proc/uptime
echo "${MARK}ready uptime=$uptime"

if [ -n "$job" ]; then
  # Let the early job go (it may have ended already: no SIGPIPE for that), then wait for it.
  trap '' PIPE
  echo go 2>/dev/null >&"$go_fd"
  trap - PIPE
  { exec {go_fd}>&-; } 2>/dev/null
  wait "$job"
  rc=$?
else
  ( run_job ) < /dev/null
  rc=$?
fi
dmesg > "$vm/dmesg.txt" 2>&1
echo "$rc" > "$vm/exit-code"
echo "${MARK}exit code=$rc"
power_off
