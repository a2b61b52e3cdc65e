// The guest side of `iommufd-conformance kselftest`: a shell script that runs
// the kernel's selftest binaries of one suite, each writing its KTAP to
// RESULTS/kselftest/<program>.ktap and its exit code to <program>.rc, and then
// our suites of the same profile (so both run on the same boot of the same
// kernel). The VFIO selftests get the device the way their README says:
// tools/testing/selftests/vfio/scripts/setup.sh binds it to vfio-pci (and
// remembers its old driver), scripts/run.sh passes its address (BDF) to the
// test, scripts/cleanup.sh gives it back before our suites bind it themselves.
import { join } from 'node:path';
import type { BuiltSuite } from './build.ts';

/** QEMU's edu device (lib/kernel/pci.ts QEMU_EDU), the viommu profile's PCI function. */
const EDU_ID = '0x1234:0x11e8';

/** Seconds one selftest binary may run before it is killed (and its cases reported as not run). */
export const PROGRAM_TIMEOUT_S = 300;

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface GuestScriptOptions {
  built: BuiltSuite;
  /** The tree the suite comes from (the VFIO scripts are run from it). */
  treeDir: string;
  /** RESULTS/kselftest in the guest. */
  ktapDir: string;
  /** The command that runs our suites afterwards (its exit code is the script's). */
  ours: string;
}

export function guestScript(o: GuestScriptOptions): string {
  const { built } = o;
  const lines = ['set -u', `mkdir -p ${q(o.ktapDir)}`, `cd ${q(o.ktapDir)}`];
  const run = (program: string, prefix: string) =>
    `timeout ${PROGRAM_TIMEOUT_S} ${prefix}${q(join(built.dir, program))} > ${q(`${program}.ktap`)} 2>&1; echo $? > ${q(`${program}.rc`)}`;
  if (built.suite === 'iommu') {
    for (const p of built.programs) lines.push(run(p, ''));
  } else {
    const scripts = join(o.treeDir, 'tools/testing/selftests/vfio/scripts');
    lines.push(
      // 2 MiB huge pages for the hugetlb variants of vfio_dma_mapping_test (1 GiB ones stay unavailable: they skip, naming why).
      'echo 16 > /proc/sys/vm/nr_hugepages',
      'bdf=',
      'for d in /sys/bus/pci/devices/*; do',
      `  [ "$(cat "$d/vendor"):$(cat "$d/device")" = ${q(EDU_ID)} ] && bdf=\${d##*/} && break`,
      'done',
      'echo "$bdf" > device.bdf',
      'if [ -n "$bdf" ] && bash ' + q(join(scripts, 'setup.sh')) + ' "$bdf" > setup.log 2>&1; then',
      ...built.programs.map((p) => `  ${run(p, `bash ${q(join(scripts, 'run.sh'))} `)}`),
      `  bash ${q(join(scripts, 'cleanup.sh'))} > cleanup.log 2>&1`,
      'else',
      '  echo "no edu device to bind to vfio-pci (bdf=\'$bdf\'): see setup.log" > setup.failed',
      'fi',
    );
  }
  lines.push(`cd /`, `exec ${o.ours}`);
  return `${lines.join('\n')}\n`;
}
