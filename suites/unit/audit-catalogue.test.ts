// The audit's catalogue and its recording, without a kernel: the catalogue's
// shape (ids, areas, backends), and every scenario run on the models of all
// three backends with the viommu profile's VT-d platform (as its sysfs
// describes it), so that a scenario the models cannot run fails here and not
// in a guest. Model against model says nothing about the kernel: the guest
// suites (suites/vm/*/audit.test.ts) compare with the kernel.
import { expect } from 'chai';
import { addonBuilt } from '../../lib/sys/addon.ts';
import { skipBecause } from '../support/skip.ts';
import { modelUnknowns, observationDifferences, StepRecorder } from '../../lib/audit/record.ts';
import { AuditRawCollector, nativeDryRun, runScenario, type BackendFactory } from '../../lib/audit/run.ts';
import { CATALOGUE, nativeNotApplicable, notApplicableOn, SETUP_DESCRIPTIONS } from '../../lib/audit/scenarios.ts';
import { freeAuditMemory, makeAuditMemory, modelDeviceTarget, modelMockTarget, modelNativeTarget, type AuditMemory, type DeviceEnvironment } from '../../lib/audit/targets.ts';
import { BACKEND_IDS } from '../../lib/audit/types.ts';
import { PGSIZE_BITS_UNKNOWN, type1PlatformFrom } from '../../lib/model/type1-platform.ts';
import { AMD_IO_PGTABLE_PLATFORM } from '../support/platforms.ts';

/** The viommu profile's platform, from its guest's sysfs and dmesg (see suites/unit/model-type1.test.ts). */
const VIOMMU_ENV: DeviceEnvironment = {
  groupId: 3,
  cdev: '/dev/vfio/devices/vfio0',
  bdf: '0000:00:03.0',
  devices: ['0000:00:03.0'],
  userPtrMax: (1n << 47n) - 4096n,
  platform: type1PlatformFrom({
    reservedRegions: '0x00000000fee00000 0x00000000feefffff msi\n',
    intelCap: 'd2008c22260286\n',
    intelEcap: 'f00f4a\n',
    cmdline: 'console=ttyS0 intel_iommu=on',
    dmesg: '[    0.020000] DMAR-IR: Enabled IRQ remapping in xapic mode\n',
    allowUnsafeInterrupts: 'N\n',
    dmaEntryLimit: '65535\n',
  }),
};

describe('audit.catalogue', () => {
  it('has at least 60 scenarios with unique area.kebab-case ids', () => {
    expect(CATALOGUE.length).to.be.at.least(60);
    const ids = CATALOGUE.map((s) => s.id);
    expect(new Set(ids).size, 'unique ids').to.equal(ids.length);
    for (const id of ids) expect(id).to.match(/^[a-z0-9-]+\.[a-z0-9-]+$/);
  });

  it('covers the areas the issue asks for', () => {
    const areas = new Set(CATALOGUE.map((s) => s.area));
    for (const a of ['MAP_DMA', 'OVERLAP', 'UNMAP_DMA', 'V1_VS_V2', 'GET_INFO', 'CHECK_EXTENSION', 'SET_IOMMU', 'GROUP', 'ACCOUNTING', 'DMA_ENTRY_LIMIT', 'PLATFORM', 'DIRTY_PAGES']) {
      expect(areas.has(a), a).to.equal(true);
    }
    // CHECK_EXTENSION of every extension id 0..10, and beyond.
    const exts = CATALOGUE.filter((s) => s.area === 'CHECK_EXTENSION').map((s) => Number(s.id.split('.')[1]!.split('-')[0]));
    for (let n = 0; n <= 11; n++) expect(exts, `extension ${n}`).to.include(n);
  });

  it('names a reason wherever a scenario does not apply, and only for known backends', () => {
    for (const s of CATALOGUE) {
      expect(SETUP_DESCRIPTIONS[s.setup], `${s.id} setup`).to.be.a('string');
      for (const [b, reason] of Object.entries(s.notApplicable ?? {})) {
        expect(BACKEND_IDS, `${s.id}`).to.include(b);
        expect(reason, `${s.id} on ${b}`).to.be.a('string').and.not.equal('');
      }
    }
  });
});

describe('audit.record', () => {
  it('finds every difference between two observations: op, errno, out fields, missing steps', () => {
    const a = new StepRecorder();
    a.record('VFIO_IOMMU_UNMAP_DMA', 0, { out: { size: '4096' } });
    a.record('VFIO_IOMMU_MAP_DMA', 22);
    const b = new StepRecorder();
    b.record('VFIO_IOMMU_UNMAP_DMA', 0, { out: { size: '0' } });
    b.record('VFIO_IOMMU_MAP_DMA', 0);
    b.record('VFIO_IOMMU_MAP_DMA', 0);
    const diffs = observationDifferences(a.observation(), b.observation());
    expect(diffs.map((d) => `${d.step}:${d.field}`)).to.deep.equal(['0:out.size', '1:errno', '2:(step)']);
    expect(a.observation().steps[1]!.errno).to.equal('EINVAL');
    expect(observationDifferences(a.observation(), a.observation())).to.deep.equal([]);
  });
  it('compares a value the model left bits of unknown without those bits, and says which', () => {
    const kernel = new StepRecorder();
    kernel.record('VFIO_IOMMU_GET_INFO', 0, { out: { iova_pgsizes: '0xffffff7ffffff000' } });
    const model = (value: string) => {
      const m = new StepRecorder();
      m.record('VFIO_IOMMU_GET_INFO', 0, { out: { iova_pgsizes: value }, unknown: { iova_pgsizes: { bits: '0xfff0000000000000', reason: PGSIZE_BITS_UNKNOWN } } });
      return m.observation();
    };
    expect(observationDifferences(kernel.observation(), model('0xfff7ffffff000'))).to.deep.equal([]);
    // A known bit that differs (2^39, 512 GiB) is still a difference.
    expect(observationDifferences(kernel.observation(), model('0xffffffffff000')).map((d) => d.field)).to.deep.equal(['out.iova_pgsizes']);
    expect(modelUnknowns(model('0xfff7ffffff000'))).to.deep.equal([`step 0 VFIO_IOMMU_GET_INFO: out.iova_pgsizes bits 0xfff0000000000000: ${PGSIZE_BITS_UNKNOWN}`]);
    expect(modelUnknowns(kernel.observation())).to.deep.equal([]);
  });
});

describe('audit.models', () => {
  let mem: AuditMemory;
  before(function () {
    // The audit's user memory is made through the addon.
    if (!addonBuilt()) skipBecause(this, 'native addon not built (no C++ compiler at npm ci): npm run build:native');
    mem = makeAuditMemory();
  });
  after(() => { if (mem !== undefined) freeAuditMemory(mem); });

  const factories: Record<string, () => BackendFactory> = {
    type1: () => ({ backend: 'type1', kernel: () => modelDeviceTarget('type1', VIOMMU_ENV, mem), model: () => modelDeviceTarget('type1', VIOMMU_ENV, mem) }),
    'compat-device': () => ({ backend: 'compat-device', kernel: () => modelDeviceTarget('compat-device', VIOMMU_ENV, mem), model: () => modelDeviceTarget('compat-device', VIOMMU_ENV, mem) }),
    'compat-mock': () => ({ backend: 'compat-mock', kernel: () => modelMockTarget(mem), model: () => modelMockTarget(mem) }),
    native: () => ({ backend: 'native', kernel: () => modelNativeTarget(VIOMMU_ENV, mem), model: () => modelNativeTarget(VIOMMU_ENV, mem) }),
  };
  for (const [backend, factory] of Object.entries(factories)) {
    it(`runs every scenario on the ${backend} model, the same way twice`, () => {
      const f = factory();
      const failures: string[] = [];
      for (const s of CATALOGUE) {
        // The dma_entry_limit scenarios change a module parameter; here the model's platform says 65535 whatever.
        if (s.env) continue;
        const run = runScenario(s, f, mem);
        if (run.failure) failures.push(run.failure);
        else if (run.result.status === 'ran') expect(run.result.kernel.steps.length, s.id).to.be.greaterThan(0);
      }
      expect(failures, failures.join('\n\n')).to.deep.equal([]);
    });
  }

  // AMD-Vi on io-pgtable (6.1 and 6.12): the model cannot tell iova_pgsizes' bits of 2^52 and above, on type1 and
  // on compat alike (the same driver gives both domains); the step says so and the audit compares without them.
  it('type1 and compat on AMD-Vi (io-pgtable): GET_INFO\'s iova_pgsizes bits of 2^52 and above are said unknown', () => {
    const amd: DeviceEnvironment = { ...VIOMMU_ENV, platform: AMD_IO_PGTABLE_PLATFORM };
    const scenario = CATALOGUE.find((x) => x.id === 'get-info.iova-pgsizes')!;
    for (const backend of ['type1', 'compat-device'] as const) {
      const target = () => modelDeviceTarget(backend, amd, mem);
      const run = runScenario(scenario, { backend, kernel: target, model: target }, mem);
      expect(run.failure, backend).to.equal(null);
      if (run.result.status !== 'ran' || !('steps' in run.result.model)) throw new Error(`${backend} did not run`);
      expect(run.result.model.steps.at(-1)!.unknown, backend).to.deep.equal({ iova_pgsizes: { bits: '0xfff0000000000000', reason: PGSIZE_BITS_UNKNOWN } });
      expect(run.result.model.steps.at(-1)!.out, backend).to.deep.equal({ iova_pgsizes: '0xfff7ffffff000' });
    }
  });

  // The model fix the audit's first viommu run called for (the kernel said EINVAL, the model OK): VT-d's
  // __domain_mapping refuses a PTE with neither READ nor WRITE, so compat's MAP_DMA with flags 0 fails on
  // the device's domain (and the device's attach fails over such a mapping) while the mock domain maps it.
  it('compat: a mapping with no access fails on the VT-d domain and not on the mock domain', () => {
    const errnos = (id: string, backend: 'compat-device' | 'compat-mock') => {
      const r = runScenario(CATALOGUE.find((x) => x.id === id)!, factories[backend]!(), mem).result;
      if (r.status !== 'ran') throw new Error(`${id} did not run on ${backend}`);
      return r.kernel.steps.map((x) => x.errno);
    };
    expect(errnos('map-dma.flags-none', 'compat-device')).to.deep.equal(['EINVAL']);
    expect(errnos('map-dma.flags-none', 'compat-mock')).to.deep.equal(['OK']);
    expect(errnos('map-dma.flags-none-then-device', 'compat-device')).to.deep.equal(['OK', 'EINVAL']);
    expect(errnos('map-dma.flags-none-then-device', 'compat-mock')).to.deep.equal(['OK', 'OK']);
  });

  it('native: every scenario runs or says why it has no native equivalent; the map, unmap and IOVA-range areas run', () => {
    const ran = new Set<string>();
    for (const s of CATALOGUE) {
      const r = runScenario(s, factories.native!(), mem).result;
      if (r.status === 'ran') ran.add(s.id);
      else expect(r.reason, s.id).to.match(/^no native equivalent: \S/);
      if (nativeNotApplicable(s)) expect(r.status, `${s.id} is listed as having no native equivalent`).to.equal('not-applicable');
    }
    for (const id of ['map-dma.baseline', 'map-dma.argsz-long-nonzero-tail', 'overlap.exact', 'unmap-dma.exact', 'unmap-dma.all', 'get-info.cap-iova-range', 'accounting.map', 'platform.msi-isolation']) {
      expect(ran.has(id), id).to.equal(true);
    }
  });

  // The declaration (notApplicable.native, the area's, v1's) decides which native tests the guest makes; the
  // native model, run on every scenario whatever it declares, says which steps have no native counterpart.
  // Each must say the same of every scenario, so that the declaration cannot go stale either way.
  it('native: a scenario declared not applicable is one the native model cannot express, and every other one it can', () => {
    const problems: string[] = [];
    let declared = 0;
    for (const s of CATALOGUE) {
      const na = nativeNotApplicable(s);
      if (na) declared++;
      const dry = nativeDryRun(s, () => modelNativeTarget(VIOMMU_ENV, mem), mem);
      if (s.nativeStepsOnly !== undefined) {
        // Declared not applicable although its steps exist natively: they must still exist.
        if (!na) problems.push(`${s.id}: nativeStepsOnly on a scenario declared to have a native equivalent`);
        if (!dry.expressible) problems.push(`${s.id}: nativeStepsOnly, but the native model cannot express it (${dry.reason}): drop nativeStepsOnly`);
      } else if (na && dry.expressible) problems.push(`${s.id}: declared "${na}", but the native model runs every step: declare why they are not its equivalent (nativeStepsOnly) or let it run`);
      else if (!na && !dry.expressible) problems.push(`${s.id}: declared to have a native equivalent, but the native model cannot express it (${dry.reason}): declare notApplicable.native`);
    }
    expect(problems, problems.join('\n')).to.deep.equal([]);
    // The declaration leaves the native half of the audit something to run, and its areas.
    expect(declared).to.be.within(1, CATALOGUE.length - 40);
  });

  // What the model says of native where its rules are iommufd's own, not compat's (the kernel's side is the guest's).
  it('native on the model: a non-zero tail past IOMMU_IOAS_MAP is E2BIG (copy_struct_from_user), unmap-all is IOVA 0 and length U64_MAX', () => {
    const steps = (id: string) => {
      const r = runScenario(CATALOGUE.find((x) => x.id === id)!, factories.native!(), mem).result;
      if (r.status !== 'ran') throw new Error(`${id} did not run on native: ${r.reason}`);
      return r.kernel.steps;
    };
    expect(steps('map-dma.argsz-long-nonzero-tail').map((x) => `${x.op} ${x.errno}`)).to.deep.equal(['IOMMU_IOAS_MAP E2BIG']);
    expect(steps('map-dma.argsz-long-zero-tail').map((x) => x.errno)).to.deep.equal(['OK']);
    const all = steps('unmap-dma.all');
    expect(all.at(-1)!.in!.length).to.equal('0xffffffffffffffff');
    expect(all.at(-1)!.out!.size).to.equal(String(2n * 64n * 1024n));
  });

  // The guest makes no test of a declared pair; the raw file still has its cell, with the scenario's reason.
  it('the raw file gives a declared not-applicable cell its reason, and a scenario that did not run says so', () => {
    const collector = new AuditRawCollector('viommu', ['type1', 'compat-device', 'native']);
    for (const b of ['type1', 'compat-device', 'native'] as const) collector.available(b);
    const raw = collector.raw();
    const cell = (id: string, b: 'type1' | 'native') => raw.scenarios.find((x) => x.id === id)!.results[b]!;
    expect(cell('set-iommu.twice', 'native')).to.deep.equal({ status: 'not-applicable', reason: notApplicableOn(CATALOGUE.find((x) => x.id === 'set-iommu.twice')!, 'native') });
    expect(cell('get-info.flags', 'native')).to.deep.equal({ status: 'not-applicable', reason: "no native equivalent: VFIO_IOMMU_GET_INFO's flags: of GET_INFO, native iommufd has only the IOVA ranges (IOMMU_IOAS_IOVA_RANGES)" });
    expect(cell('map-dma.baseline', 'native')).to.deep.equal({ status: 'not-applicable', reason: 'not run (filtered out, or its test did not finish)' });
    expect(cell('set-iommu.twice', 'type1')).to.deep.equal({ status: 'not-applicable', reason: 'not run (filtered out, or its test did not finish)' });
  });

  it('type1 and compat differ where the catalogue expects them to, on the models too (a spot check)', () => {
    const s = CATALOGUE.find((x) => x.id === 'set-iommu.twice')!;
    const t1 = runScenario(s, factories.type1!(), mem).result;
    const cd = runScenario(s, factories['compat-device']!(), mem).result;
    if (t1.status !== 'ran' || cd.status !== 'ran') throw new Error('did not run');
    expect(t1.kernel.steps.map((x) => x.errno)).to.deep.equal(['OK', 'EINVAL']);
    expect(cd.kernel.steps.map((x) => x.errno)).to.deep.equal(['OK', 'OK']);
  });
});
