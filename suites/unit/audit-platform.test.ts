// The audit's platform dimension (issue 14 items 1 and 5): the platform a raw
// file records, known differences limited to a platform by `when`, the most
// specific entry winning, the report naming the platform, and a setup the
// platform refuses (no isolated MSI) being not applicable only where the model
// refuses the same step with the same errno.
import { expect } from 'chai';
import { appliesTo, appliesToBaseline, BASELINE_PLATFORM, parseKnownDifferences, platformSwitches, type KnownDifference } from '../../lib/audit/known-differences.ts';
import { renderMarkdown } from '../../lib/audit/render-markdown.ts';
import { AuditInputError, auditPlatforms, buildAudit, validateRaw, type LoadedRaw } from '../../lib/audit/report.ts';
import { runScenario, type BackendFactory } from '../../lib/audit/run.ts';
import { CATALOGUE } from '../../lib/audit/scenarios.ts';
import { freeAuditMemory, makeAuditMemory, modelDeviceTarget, modelNativeTarget, msiRefusal, type AuditMemory, type DeviceEnvironment } from '../../lib/audit/targets.ts';
import type { AuditPlatform, AuditRaw } from '../../lib/audit/types.ts';
import { type1PlatformFrom } from '../../lib/model/type1-platform.ts';
import { addonBuilt } from '../../lib/sys/addon.ts';
import { skipBecause } from '../support/skip.ts';
import { catalogue, knownJson, mockRaw, ran, step, viommuRaw } from './fixtures/audit-raw.fixture.ts';

const NOIR: AuditPlatform = {
  name: 'intel-iommu without interrupt remapping, allow_unsafe_interrupts: vfio_iommu_type1=N, iommufd=N',
  interruptRemapping: false,
  type1AllowUnsafeInterrupts: false,
  iommufdAllowUnsafeInterrupts: false,
};

const source = [{ file: 'drivers/vfio/vfio_iommu_type1.c', function: 'vfio_iommu_type1_attach_group', lines: { '6.12.117': '2259' }, excerpt: 'ret = -EPERM;' }];
const general: KnownDifference = {
  scenario: 'map-dma.flags-zero', between: ['type1', 'compat-device'], expect: { type1: [{ step: -1, errno: 'EINVAL' }], 'compat-device': [{ step: -1, errno: 'OK' }] },
  summary: 'compat maps with no READ/WRITE', explanation: 'type1 needs READ or WRITE.', source,
};
const onNoir: KnownDifference = {
  ...general,
  expect: { type1: [{ step: 1, errno: 'EPERM' }], 'compat-device': [{ step: 1, errno: 'OK' }] },
  summary: 'type1 refuses the group at SET_IOMMU without isolated MSI', explanation: 'vfio_iommu_type1_attach_group: EPERM.',
  when: { msiIsolated: false, type1AllowUnsafeInterrupts: false },
};

function loaded(...raws: AuditRaw[]): LoadedRaw[] {
  return raws.map((raw) => ({ path: `/fixture/${raw.profile}/audit-raw.json`, raw: validateRaw(JSON.parse(JSON.stringify(raw)), raw.profile) }));
}

/** The viommu raw file on the platform without interrupt remapping: type1 refused at SET_IOMMU in map-dma.flags-zero. */
function noirRaw(): AuditRaw {
  const cat = catalogue();
  cat['map-dma.flags-zero']!.results.type1 = ran([step('VFIO_GROUP_SET_CONTAINER', 'OK'), step('VFIO_SET_IOMMU(type1v2)', 'EPERM'), step('VFIO_IOMMU_MAP_DMA', 'EINVAL')]);
  return { ...viommuRaw(cat), platform: NOIR };
}

describe('audit platform', () => {
  it('known differences: `when` takes platform switches, which do not change the tree an entry cites', () => {
    const parsed = parseKnownDifferences(knownJson([general, onNoir]), 'k.json');
    expect(parsed[1]!.when).to.deep.equal({ msiIsolated: false, type1AllowUnsafeInterrupts: false });
    expect(appliesTo(onNoir), 'the baseline platform has interrupt remapping').to.equal(false);
    expect(appliesTo(onNoir, undefined, platformSwitches(NOIR))).to.equal(true);
    expect(appliesTo(onNoir, undefined, { ...platformSwitches(NOIR), type1AllowUnsafeInterrupts: true })).to.equal(false);
    expect(appliesTo(general, undefined, platformSwitches(NOIR)), 'an entry without `when` applies on every platform').to.equal(true);
    expect(appliesToBaseline(onNoir), "cites 6.12's tree").to.equal(true);
    expect(platformSwitches(undefined)).to.deep.equal(BASELINE_PLATFORM);
  });

  it('the raw file\'s platform is validated, carried into the report and named in it', () => {
    const bad = { ...viommuRaw(), platform: { name: 'x', interruptRemapping: 'no' } };
    expect(() => validateRaw(JSON.parse(JSON.stringify(bad)), 'bad')).to.throw(AuditInputError, /"platform" must be/);
    const a = buildAudit(loaded(noirRaw(), mockRaw()), [general, onNoir]);
    expect(a.profiles.viommu.platform).to.equal(NOIR.name);
    expect(auditPlatforms(a)).to.deep.equal([NOIR.name]);
    expect(renderMarkdown(a)).to.include("platform: intel-iommu without interrupt remapping");
  });

  it('on a platform an entry names, it replaces the general one for that scenario and pair', () => {
    const a = buildAudit(loaded(noirRaw(), mockRaw()), [general, onNoir]);
    const c = a.rows.find((r) => r.id === 'map-dma.flags-zero')!.comparisons.find((x) => x.between[1] === 'compat-device')!;
    expect(c.known?.summary).to.equal(onNoir.summary);
    // On the baseline platform the general entry is the one, and the platform's entry does not apply.
    const ir = buildAudit(loaded(viommuRaw(), mockRaw()), [general, onNoir]);
    const cIr = ir.rows.find((r) => r.id === 'map-dma.flags-zero')!.comparisons.find((x) => x.between[1] === 'compat-device')!;
    expect([cIr.state, cIr.known?.summary]).to.deep.equal(['explained', general.summary]);
  });

  describe('a setup the platform refuses', () => {
    let mem: AuditMemory;
    before(function () {
      if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
      mem = makeAuditMemory();
    });
    after(() => { if (mem !== undefined) freeAuditMemory(mem); });

    const env = (iommufdUnsafe: boolean): DeviceEnvironment => ({
      groupId: 3, cdev: '/dev/vfio/devices/vfio0', bdf: '0000:00:03.0', devices: ['0000:00:03.0'], userPtrMax: (1n << 47n) - 4096n,
      platform: type1PlatformFrom({
        reservedRegions: '0x00000000fee00000 0x00000000feefffff msi\n', intelCap: 'd2008c22260286\n', intelEcap: 'f42\n', cmdline: 'intel_iommu=on', dmesg: '',
        interrupts: ' 25:  0  0  PCI-MSIX-0000:00:01.0   0-edge      virtio0-config\n',
        allowUnsafeInterrupts: 'N', iommufdAllowUnsafeInterrupts: iommufdUnsafe ? 'Y' : 'N', dmaEntryLimit: '65535\n',
      }),
    });
    const baseline = CATALOGUE.find((s) => s.id === 'map-dma.baseline')!;

    it('is not applicable, with the facts, where the model refuses the same step with the same errno', () => {
      const e = env(false);
      const f: BackendFactory = { backend: 'type1', kernel: () => modelDeviceTarget('type1', e, mem), model: () => modelDeviceTarget('type1', e, mem), refusal: () => msiRefusal('type1', e) };
      const run = runScenario(baseline, f, mem);
      expect(run.failure).to.equal(null);
      expect(run.result).to.deep.include({ status: 'not-applicable' });
      expect((run.result as { reason: string }).reason).to.match(/^refused by the platform: VFIO_SET_IOMMU fails with EPERM in setup 'type1v2', as the model predicts \(no isolated MSI: .*vfio_iommu_type1\.allow_unsafe_interrupts=N\)$/);
      const n: BackendFactory = { backend: 'native', kernel: () => modelNativeTarget(e, mem), model: () => modelNativeTarget(e, mem), refusal: () => msiRefusal('native', e) };
      expect((runScenario(baseline, n, mem).result as { reason: string }).reason).to.match(/^refused by the platform: VFIO_DEVICE_BIND_IOMMUFD\+IOMMU_IOAS_ALLOC fails with EPERM/);
    });

    it('fails the test where the model does not refuse it (the kernel refused what the model let through)', () => {
      // The "kernel" side refuses native's bind (iommufd.allow_unsafe_interrupts=N); the model is told it is Y.
      const refusing = env(false);
      const allowing = env(true);
      const f: BackendFactory = { backend: 'native', kernel: () => modelNativeTarget(refusing, mem), model: () => modelNativeTarget(allowing, mem), refusal: () => msiRefusal('native', refusing) };
      const run = runScenario(baseline, f, mem);
      expect(run.failure).to.match(/the kernel run failed/);
    });
  });
});
