// Unit tests of the fuzzer's plumbing, on the model alone (no kernel, so no
// oracle here: the guest runs the real thing, suites/vm/mock/fuzz.test.ts):
// the steps run, the same seed gives the same sequences, a failing step is
// shrunk and written as a replay file and a test that replay it, and the
// mutations apply and revert.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { UsageError } from '../../lib/cli/args.ts';
import { FUZZ_OPTIONS, parseDuration, runFuzzCommand } from '../../lib/cli/fuzz.ts';
import { commandArbitraries, stepsOf } from '../../lib/fuzz/commands.ts';
import { fuzz, FuzzSession, readReplayFile, replaySteps } from '../../lib/fuzz/runner.ts';
import { IoPageTable } from '../../lib/model/io-pagetable.ts';
import { IommufdModel } from '../../lib/model/iommufd.ts';
import { MUTATIONS } from '../fuzz-mutations/mutations.ts';

describe('fuzz (model alone)', function () {
  this.timeout(60_000);

  it('runs random sequences on the model for a while without the model throwing', () => {
    const r = fuzz({ seed: 7, timeMs: 1500, out: mkdtempSync(join(tmpdir(), 'fuzz-')), mode: 'model', log: () => {} });
    expect(r.error).to.equal(null);
    expect(r.ok).to.equal(true);
    expect(r.steps).to.be.greaterThan(100);
  });

  it('draws the same sequences from the same seed', () => {
    const sample = (seed: number) => fc.sample(fc.commands(commandArbitraries(8), { maxCommands: 30 }), { seed, numRuns: 5 }).map((cmds) => [...cmds].map(String).join(';'));
    expect(sample(42)).to.deep.equal(sample(42));
    expect(sample(42)).to.not.deep.equal(sample(43));
  });

  it('shrinks a failing step to a minimal sequence, written as a replay file and a mocha test that fail again', () => {
    // A model that hands out IOAS ID 0 breaks the step's own check (an ID it was given is not 0).
    const original = IommufdModel.prototype.ioasAlloc;
    IommufdModel.prototype.ioasAlloc = function (this: IommufdModel, ...args: Parameters<typeof original>) {
      const r = original.apply(this, args);
      return r.errno === 0 ? { ...r, ioasId: 0 } : r;
    };
    try {
      const out = mkdtempSync(join(tmpdir(), 'fuzz-'));
      const r = fuzz({ seed: 3, timeMs: 10_000, out, mode: 'model', log: () => {} });
      expect(r.ok).to.equal(false);
      expect(r.error).to.match(/IOMMU_IOAS_ALLOC succeeded with ID 0/);
      const replay = readReplayFile(r.replayFile!);
      expect(replay.seed).to.equal(3);
      expect(replay.steps.map((s) => s.name)).to.deep.equal(['ioasAlloc']);
      expect(() => replaySteps(replay.steps, new FuzzSession('model'))).to.throw(/succeeded with ID 0/);
      const test = readFileSync(r.testFile!, 'utf8');
      expect(test).to.include("name: 'ioasAlloc'");
      expect(test).to.include('replaySteps([');
    } finally {
      IommufdModel.prototype.ioasAlloc = original;
    }
  });

  it('has at least 20 mutations, each with a unique name, each reverted', () => {
    expect(MUTATIONS.length).to.be.at.least(20);
    expect(new Set(MUTATIONS.map((m) => m.name)).size).to.equal(MUTATIONS.length);
    const methods = () => Object.entries(Object.getOwnPropertyDescriptors(IommufdModel.prototype)).map(([n, d]) => [n, d.value]);
    const before = methods();
    for (const m of MUTATIONS) m.apply()();
    const afterAll = methods();
    expect(afterAll).to.deep.equal(before);
  });

  it('refuses bad options with a usage error before booting anything', async () => {
    const base = Object.fromEntries(Object.entries(FUZZ_OPTIONS).map(([k, v]) => [k, 'default' in v ? v.default : undefined]));
    for (const bad of [{ profile: 'kvm' }, { time: 'soon' }, { seed: 'x' }, { 'fault-every': '-1' }, { replay: 'f.json', mutation: 'all' }]) {
      let err: unknown;
      try {
        await runFuzzCommand({ ...base, ...bad } as never);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(bad)).to.be.instanceOf(UsageError);
    }
  });

  it('flips an errno a model method returns as a number, and puts the method back', () => {
    const m = MUTATIONS.find((x) => x.name === 'add-reserved-over-area-ok')!;
    const iopt = new IoPageTable();
    iopt.setAllowed([{ start: 0n, last: 8191n }]);
    expect(iopt.reserve(0n, 4095n, null), 'unmutated').to.not.equal(0);
    const revert = m.apply();
    try {
      expect(iopt.reserve(4096n, 8191n, null), 'mutated').to.equal(0);
    } finally {
      revert();
    }
    expect(iopt.reserve(0n, 100n, null), 'reverted').to.not.equal(0);
  });

  it('draws fault-queue steps in the mock profile, and in the viommu profile the VFIO steps and no step that needs a mock device', () => {
    const mock = stepsOf('mock');
    const viommu = stepsOf('viommu');
    expect(mock).to.include.members(['faultQueueAlloc', 'hwptAllocFault', 'hwptAllocNested', 'triggerIopf', 'faultRead', 'faultRespond', 'faultPoll', 'closeFault']);
    expect(mock.filter((n) => n.startsWith('vfio'))).to.deep.equal([]);
    expect(viommu).to.include.members(['vfioSetContainer', 'vfioSetIommu', 'vfioOpenDevice', 'vfioMapDma', 'vfioUnmapDma', 'vfioGetInfo', 'vfioDirtyPages', 'ioasAlloc', 'map', 'faultQueueAlloc']);
    expect(viommu).to.not.include.members(['mockDomain', 'triggerIopf', 'accessPages', 'getDirtyBitmap']);
  });

  it('reads durations', () => {
    expect(parseDuration('90')).to.equal(90_000);
    expect(parseDuration('2m')).to.equal(120_000);
    expect(parseDuration('500ms')).to.equal(500);
    expect(() => parseDuration('soon')).to.throw(/duration/);
  });
});
