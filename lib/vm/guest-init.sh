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
# suites' Node, lib/vm/guest-loader.cjs) is started before the first mount
# and let go once every mount is made and checked: Node's start, under TCG
# about a second of QEMU translating the code it runs for the first time,
# overlaps the mount processes, the first (/proc) included. Node starts as
# well without /proc: the total memory its heap limits come from is libuv's
# sysinfo(2) fallback for /proc/meminfo (the same MemTotal), it finds no
# memory cgroup either way (no guest mounts one), and process.execPath falls
# back from /proc/self/exe to argv[0], the absolute path job.sh execs. What
# the job reads of /proc, /sys or the results folder, it reads after its go.
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

# Before the first mount (above): the early job needs none of them until its go.
[ "$early" = 1 ] && start_early_job
targets=()
for entry in "${entries[@]}"; do
  read -r src dst type opts _ <<< "$entry"
  [ -z "$src" ] || [ "${src:0:1}" = '#' ] && continue
  if ! err=$(mount -t "$type" -o "$opts" "$src" "$dst" 2>&1); then
    fail "mount -t $type -o $opts $src $dst failed: ${err:-no message}"
  fi
  targets+=("$dst")
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
