// Which platform audits npm test runs (lib/cli/test-all.ts platformAuditRuns): the main kernel's as
// NPM_TEST_PLATFORM_AUDITS says, and on 7.2 one per published 7.2 part, so that no published part goes
// stale; and the platform each device profile declares (Profile.auditPlatform), by which a part is found.
import { expect } from 'chai';
import { platformAuditRuns } from '../../lib/cli/test-all.ts';
import { platformKey, publishedParts } from '../../lib/audit/published-layout.ts';
import { DEVICE_PROFILES, NPM_TEST_7_2_AUDIT_EXCLUSIONS, NPM_TEST_PLATFORM_AUDITS, profiles } from '../../lib/vm/profiles.ts';

const main = { kernelVersion: '6.12', flavour: 'base' } as const;
const part = (kernel: string, profile: keyof typeof profiles) => {
  const key = platformKey(profiles[profile].auditPlatform!);
  return { kernel, key, path: `${kernel}/${key}` };
};

describe('npm test: the platform audits it runs', () => {
  it('runs NPM_TEST_PLATFORM_AUDITS on the main kernel and, on 7.2, the audit of every platform with a published 7.2 part', () => {
    const parts = [part('6.12.117', 'viommu'), part('6.12.117', 'virtio'), part('7.2.13', 'viommu'), part('7.2.13', 'viommu-noir'), part('7.2.13', 'amd'), part('7.2.13', 'virtio-unsafe')];
    const { runs, notCompared, problems } = platformAuditRuns(main, parts, {});
    expect(runs.filter((r) => r.kernel === main).map((r) => r.profile)).to.deep.equal([...NPM_TEST_PLATFORM_AUDITS]);
    const on72 = runs.filter((r) => r.kernel !== main);
    expect(on72.map((r) => [r.kernel.kernelVersion, r.profile, r.dir])).to.deep.equal([
      ['7.2', 'viommu', 'audit-7.2-viommu'],
      ['7.2', 'viommu-noir', 'audit-7.2-viommu-noir'],
      ['7.2', 'amd', 'audit-7.2-amd'],
      ['7.2', 'virtio-unsafe', 'audit-7.2-virtio-unsafe'],
    ]);
    expect(new Set(runs.map((r) => r.dir)).size).to.equal(runs.length);
    expect(notCompared).to.deep.equal([]);
    expect(problems).to.deep.equal([]);
  });

  it('runs no 7.2 audit for a platform whose 7.2 part is not published', () => {
    const { runs } = platformAuditRuns(main, [part('6.12.117', 'amd'), part('7.2.13', 'viommu')], {});
    expect(runs.filter((r) => r.kernel !== main).map((r) => r.profile)).to.deep.equal(['viommu']);
  });

  it('leaves an excluded platform uncompared, naming its part and the reason', () => {
    const { runs, notCompared } = platformAuditRuns(main, [part('7.2.13', 'viommu'), part('7.2.13', 'amd')], { amd: 'the reason' });
    expect(runs.filter((r) => r.kernel !== main).map((r) => r.profile)).to.deep.equal(['viommu']);
    expect(notCompared).to.have.length(1);
    expect(notCompared[0]).to.include('docs/audit/7.2.13/amd-iommu-with-interrupt-remapping/').and.include('--platform amd').and.include('the reason');
  });

  it('fails a 7.2 part whose platform no device profile records', () => {
    const { problems } = platformAuditRuns(main, [{ kernel: '7.2.13', key: 'smmu-v3', path: '7.2.13/smmu-v3' }], {});
    expect(problems).to.have.length(1);
    expect(problems[0]).to.include('docs/audit/7.2.13/smmu-v3/');
  });

  it('adds no 7.2 audit when the main kernel is 7.2 or not a Debian series', () => {
    const parts = [part('7.2.13', 'viommu'), part('7.2.13', 'amd')];
    for (const k of [{ kernelVersion: '7.2', flavour: 'base' } as const, { ...main, kernelSrc: '/src/linux' }, { ...main, kernel: '/k/vmlinux' }]) {
      const { runs, problems } = platformAuditRuns(k, parts, {});
      expect(runs.map((r) => r.profile)).to.deep.equal([...NPM_TEST_PLATFORM_AUDITS]);
      expect(runs.every((r) => r.kernel === k)).to.equal(true);
      expect(problems).to.deep.equal([]);
    }
  });

  it('compares every published 7.2 part of docs/audit/, or names why not', () => {
    const parts = publishedParts().filter((p) => p.kernel.startsWith('7.2.'));
    expect(parts).to.not.be.empty;
    const { runs, notCompared, problems } = platformAuditRuns(main, publishedParts());
    expect(problems).to.deep.equal([]);
    const ran = runs.filter((r) => r.kernel !== main).map((r) => platformKey(profiles[r.profile].auditPlatform!));
    const left = parts.filter((p) => !ran.includes(p.key));
    expect(left.map((p) => p.path)).to.have.length(notCompared.length);
    for (const p of left) expect(notCompared.some((n) => n.includes(`docs/audit/${p.path}/`))).to.equal(true, p.path);
    for (const reason of Object.values(NPM_TEST_7_2_AUDIT_EXCLUSIONS)) expect(reason).to.match(/\S{8,}/);
  });
});

describe('device profiles: the platform their audit records', () => {
  it('is declared by every device profile, once each, and by no other', () => {
    const names = DEVICE_PROFILES.map((d) => profiles[d].auditPlatform);
    expect(names.every((n) => typeof n === 'string')).to.equal(true);
    expect(new Set(names.map((n) => platformKey(n!))).size).to.equal(DEVICE_PROFILES.length);
    expect(profiles.mock.auditPlatform).to.equal(undefined);
  });

  it("agrees with the machine and command line the profile boots (the facts lib/audit/targets.ts auditPlatform reads)", () => {
    for (const d of DEVICE_PROFILES) {
      const { qemuArgs, kernelArgs, auditPlatform } = profiles[d];
      const qemu = qemuArgs.join(' ');
      const driver = qemu.includes('amd-iommu') ? 'amd-iommu' : qemu.includes('virtio-iommu') ? 'virtio-iommu' : 'intel-iommu';
      const remapped = driver !== 'virtio-iommu' && qemu.includes('intremap=on');
      const yn = (param: string) => (kernelArgs.includes(`${param}.allow_unsafe_interrupts=1`) ? 'Y' : 'N');
      const expected = remapped
        ? `${driver} with interrupt remapping`
        : `${driver} without interrupt remapping, allow_unsafe_interrupts: vfio_iommu_type1=${yn('vfio_iommu_type1')}, iommufd=${yn('iommufd')}`;
      expect(auditPlatform, d).to.equal(expected);
    }
  });

  it('names every published part, of every kernel', () => {
    const keys = DEVICE_PROFILES.map((d) => platformKey(profiles[d].auditPlatform!));
    // Where the kernel has no iommufd (6.1: the audit's compat backend skipped for want of /dev/iommu), there
    // is no iommufd.allow_unsafe_interrupts either, and every profile's platform reads "iommufd=N".
    const withoutIommufd = DEVICE_PROFILES.map((d) => platformKey(profiles[d].auditPlatform!.replace('iommufd=Y', 'iommufd=N')));
    for (const p of publishedParts()) {
      const noIommufd = /no \/dev\/iommu/.test(p.json.backends['compat-device']?.reason ?? '');
      expect(noIommufd ? withoutIommufd : keys, p.path).to.include(p.key);
    }
  });
});
