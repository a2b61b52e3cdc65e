#!/bin/bash
# PID 1 of the iommufd-conformance test guest. The root file system is the
# host's, shared read-only over 9p; the one writable place is the results
# folder, mounted over its own host path so that paths mean the same thing on
# both sides. The host leaves the job in $IOMMUFD_CONFORMANCE_RESULTS/.vm/
# (the kernel passes unknown name=value arguments of its command line to init
# as environment variables): fstab, job.sh, job.env, cwd. This script mounts,
# runs the job, records its exit code and the kernel log there, and powers
# off. Every process it starts costs tens of milliseconds under TCG, so it
# starts few: one mount for everything (the fstab is read through the
# read-only root before the results folder is mounted over it).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export TMPDIR=/run/tmp HOME=/run/home TERM=dumb LANG=C.UTF-8

results=$IOMMUFD_CONFORMANCE_RESULTS
vm=$results/.vm
power_off() {
  sync
  echo o > /proc/sysrq-trigger
  # Wait for the power-off with shell builtins only: /bin/sleep lives on the
  # 9p root, which can fail (EIO) once the power-off has begun, and init must
  # never exit (the kernel would panic, and the host would report a crash).
  while :; do :; done
}
if ! mount -a -T "$vm/fstab"; then
  echo "@@iommufd-conformance:error mounting $vm/fstab failed"
  power_off
fi
mkdir -p "$TMPDIR" "$HOME"
# /proc/uptime's first field is seconds since the kernel started.
read -r uptime _ < /proc/uptime
echo "@@iommufd-conformance:ready uptime=$uptime"

cd "$(< "$vm/cwd")" || cd /
set -a
. "$vm/job.env"
set +a
bash "$vm/job.sh" < /dev/null
rc=$?
dmesg > "$vm/dmesg.txt" 2>&1
echo "$rc" > "$vm/exit-code"
echo "@@iommufd-conformance:exit code=$rc"
power_off
