#!/bin/bash
# PID 1 of the iommufd-conformance test guest. The root file system is the
# host's, shared read-only over 9p; the one writable place is the results
# folder, mounted over its own host path so that paths mean the same thing on
# both sides. The host leaves the job in $IOMMUFD_CONFORMANCE_RESULTS/.vm/
# (the kernel passes unknown name=value arguments of its command line to init
# as environment variables): fstab, job.sh, job.env, cwd. This script mounts,
# runs the job, records its exit code and the kernel log there, and powers
# off. Every process it starts costs tens of milliseconds under TCG, so it
# starts few.
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

cd "$(< "$vm/cwd")" || cd /
set -a
. "$vm/job.env"
set +a
# A subshell, not a second bash: one exec less before the job starts.
( . "$vm/job.sh" ) < /dev/null
rc=$?
dmesg > "$vm/dmesg.txt" 2>&1
echo "$rc" > "$vm/exit-code"
echo "${MARK}exit code=$rc"
power_off
