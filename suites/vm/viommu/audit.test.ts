// The audit (issue #6 item 2) in the viommu profile: every catalogue scenario on
// (a) a real type1 container and (b) iommufd's compat on /dev/iommu, both with
// the device's group, and (c) native iommufd with the same device through
// its cdev (issue 14; a scenario without a native equivalent says why), each
// on the kernel and, separately, on the model of
// that backend (lib/audit/targets.ts says why separately). A test passes when
// the model predicted the kernel step for step; differences BETWEEN backends
// are not failures here: the audit report judges them against
// fixtures/audit/known-differences.json. The device is the one
// IOMMUFD_CONFORMANCE_DEVICE names, else QEMU's edu (lib/audit/device-half.ts).
//
// Then `audit --host --device BDF` (issue 14 item 8), run here as on a host
// with the device already bound (by the suite, as a user would), must give
// the same cells as the suite did.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { DEVICE_BACKENDS, deviceBackendWhyNot, deviceHalfFactory, prepareDeviceHalf } from '../../../lib/audit/device-half.ts';
import { cellDifferences } from '../../../lib/audit/host-device.ts';
import { readRawFile } from '../../../lib/audit/report.ts';
import { auditPlatform, type DeviceEnvironment } from '../../../lib/audit/targets.ts';
import { auditSuite } from '../../support/audit.ts';
import { cliCommand } from '../../support/cli.ts';
import { skipBecause } from '../../support/skip.ts';

let env: DeviceEnvironment | null = null;

auditSuite({
  profile: 'viommu',
  backends: DEVICE_BACKENDS,
  whyNot() {
    const prepared = prepareDeviceHalf();
    if ('why' in prepared) return prepared.why;
    env = prepared.env;
    return null;
  },
  whyNotBackend: (backend) => deviceBackendWhyNot(backend, env!),
  factory: (backend, mem) => deviceHalfFactory(backend, env!, mem),
  moreTests(collected) {
    describe('host', () => {
      it('same-cells-as-audit-host', function () {
        // A second run of the whole device half, in a child process (under TCG: tens of seconds).
        this.timeout(900_000);
        const ranHere = collected.raw().scenarios.some((s) => DEVICE_BACKENDS.some((b) => s.results[b]?.status === 'ran'));
        if (!ranHere) skipBecause(this, 'no device-half scenario ran in this suite (filtered out): nothing to compare with');
        const out = mkdtempSync(join(tmpdir(), 'audit-host-'));
        try {
          const childEnv = { ...process.env };
          // The child is a host run: it names its device itself and writes under its own --out.
          delete childEnv.IOMMUFD_CONFORMANCE_OUT;
          delete childEnv.IOMMUFD_CONFORMANCE_DEVICE;
          // Not the page: headless Chromium under TCG takes minutes, and the renderer is the same one the host
          // checks after a VM audit (and the unit suite checks). Without it the page is reported not checked.
          childEnv.CHROMIUM = '/nonexistent/chromium';
          delete childEnv.CI;
          const [cmd, ...args] = [...cliCommand(), 'audit', '--host', '--device', env!.bdf, '--out', out];
          const r = spawnSync(cmd!, args, { encoding: 'utf8', env: childEnv, maxBuffer: 64 << 20 });
          const output = `${r.stdout}${r.stderr}`;
          process.stdout.write(output.split('\n').filter((l) => /^audit( --host)?:/.test(l)).map((l) => `# ${l}\n`).join(''));
          // 0 (the verdict passed) or 1 (it found what the suite's own tests report); never a usage or host error.
          expect(r.status, `audit --host exited ${r.status}:\n${output}`).to.be.oneOf([0, 1]);
          const host = readRawFile(join(out, 'host', 'audit-raw.json')).raw;
          expect(host.host?.device.bdf).to.equal(env!.bdf);
          expect(host.host?.kernel).to.equal(readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
          const { compared, differences } = cellDifferences(collected.raw(), host, DEVICE_BACKENDS, collected.ran);
          expect(compared, 'cells compared').to.be.greaterThan(0);
          expect(differences, `audit --host differs from the suite in ${differences.length} of ${compared} cells`).to.deep.equal([]);
          process.stdout.write(`# audit --host: the same cells as this suite's, kernel and model: ${compared} of ${compared} compared\n`);
        } finally {
          rmSync(out, { recursive: true, force: true });
        }
      });
    });
  },
  platform: () => auditPlatform(env!),
});
