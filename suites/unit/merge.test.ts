// `iommufd-conformance merge` on real runs of this host: the unit files below
// run through `iommufd-conformance run` whole and as --shard 1/4 .. 4/4; the
// merged shards must equal the whole run; missing, doubled and overlapping
// shards are refused; and a merge of two runs gives a KTAP file that the
// kernel's own KTAP parser (kunit_parser.py) and tap-parser read, an xunit
// file whose suites carry the run, and a page checked in headless Chromium.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { chromiumMissing } from '../../lib/audit/browser.ts';
import { joinedAuditRaw } from '../../lib/merge/audit.ts';
import { MergeError, readRuns, writeMerged } from '../../lib/merge/index.ts';
import { mergedPageProblems, probeMergedPage } from '../../lib/merge/page-check.ts';
import { suiteOf, type MergedRun } from '../../lib/merge/types.ts';
import { kernelParities } from '../../lib/merge/parity.ts';
import { parityHolds, parityKernel } from '../../lib/parity/table.ts';
import { PACKAGE_ROOT } from '../../lib/package-root.ts';
import { nestedBlocks, parseTapLevel, parseWithKunit } from '../support/ktap-check.ts';
import { skipBecause } from '../support/skip.ts';
import { kernelSourceOrSkip } from '../support/kernel-source.ts';

const run = promisify(execFile);
const CLI = join(PACKAGE_ROOT, 'bin/iommufd-conformance.js');
// Cheap, self-contained unit files (none of them runs `iommufd-conformance run` itself).
const FILES = ['suites/unit/uapi-codec.test.ts', 'suites/unit/model-interval-tree.test.ts'].map((f) => join(PACKAGE_ROOT, f));

// A real run with a real failure and a real skip, for the failure paths of the report.
const FAILING_FILE = `
describe('merge_fixture', () => {
  it('passes', () => {});
  it('fails', () => { throw new Error('expected 1 to equal 2'); });
  it('skips', function () { this.skip(); });
});
`;

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { cwd: PACKAGE_ROOT, maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

const key = (r: MergedRun) => r.tests.map((t) => `${t.name} ${JSON.stringify(t.status)}`).sort();

describe('merge', function () {
  this.timeout(300_000);
  let dir: string;
  const folder = (name: string) => join(dir, name);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'merge-test-'));
    writeFileSync(join(dir, 'merge_fixture.test.ts'), FAILING_FILE);
    const runs = [
      cli(['run', ...FILES.flatMap((f) => ['--files', f]), '--out', folder('whole')]),
      ...[1, 2, 3, 4].map((k) => cli(['run', ...FILES.flatMap((f) => ['--files', f]), '--shard', `${k}/4`, '--out', folder(`shard${k}`)])),
      cli(['run', ...FILES.flatMap((f) => ['--files', f]), '--shard', '1/3', '--out', folder('other-split')]),
      cli(['run', '--files', join(dir, 'merge_fixture.test.ts'), '--out', folder('failing')]),
      // The mock profile's suites on this host (its audit suite writes audit-raw.json whatever it can run).
      cli(['run', '--profile', 'mock', '--out', folder('mock-whole')]),
      ...[1, 2, 3].map((k) => cli(['run', '--profile', 'mock', '--shard', `${k}/3`, '--out', folder(`mock-shard${k}`)])),
    ];
    const results = await Promise.all(runs);
    [...results.slice(0, 6), ...results.slice(7)].forEach((r, i) => expect(r.code, `run ${i}: ${r.stderr}${r.stdout.slice(-2000)}`).to.equal(0));
    expect(results[6]!.code, 'the run with a failing test exits 1').to.equal(1);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the merged --shard 1/4 .. 4/4 equals the unsharded run: same cases, same statuses', () => {
    const [whole] = readRuns([folder('whole')]);
    const [sharded] = readRuns([1, 2, 3, 4].map((k) => folder(`shard${k}`)));
    expect(sharded!.parts).to.have.length(4);
    expect(whole!.tests.length).to.be.greaterThan(20);
    expect(sharded!.tests).to.have.length(whole!.tests.length);
    expect(key(sharded!)).to.deep.equal(key(whole!));
    expect(sharded!.counts).to.deep.equal(whole!.counts);
    expect(sharded!.label).to.equal(whole!.label);
    // Each shard ran a real part: none of them all, none of them nothing.
    for (const p of sharded!.parts) expect(p.results.length).to.be.within(1, whole!.tests.length - 1);
  });

  it('refuses a missing shard, a doubled shard, shards of two splits, and a whole run beside its shards, with the reason', () => {
    const refused = (paths: string[]) => {
      try {
        readRuns(paths);
      } catch (e) {
        if (e instanceof MergeError) return e.message;
        throw e;
      }
      return null;
    };
    expect(refused([1, 2, 4].map((k) => folder(`shard${k}`)))).to.match(/incomplete shard set .*3\/4 missing/);
    cpSync(folder('shard2'), folder('shard2-again'), { recursive: true });
    expect(refused([...[1, 2, 3, 4].map((k) => folder(`shard${k}`)), folder('shard2-again')])).to.match(/overlapping shards .*shard 2\/4 given 2 times/);
    expect(refused([...[1, 2, 3, 4].map((k) => folder(`shard${k}`)), folder('other-split')])).to.match(/shards of different splits/);
    expect(refused([...[1, 2, 3, 4].map((k) => folder(`shard${k}`)), folder('whole')])).to.match(/overlapping results .*a whole run beside shards of it/);
    // The CLI says so and exits 2, writing nothing.
    return cli(['merge', folder('shard1'), folder('shard2'), '--out', folder('refused-out')]).then((r) => {
      expect(r.code).to.equal(2);
      expect(r.stderr).to.match(/refused: incomplete shard set/);
    });
  });

  it('refuses a folder whose run did not finish (results without run.json)', () => {
    cpSync(folder('whole'), folder('unfinished'), { recursive: true });
    rmSync(join(folder('unfinished'), 'run.json'));
    expect(() => readRuns([folder('unfinished')])).to.throw(MergeError, /without a run.json/);
  });

  it("joins a sharded profile's audit-raw.json files into the whole run's", () => {
    const [whole] = readRuns([folder('mock-whole')]);
    const [sharded] = readRuns([1, 2, 3].map((k) => folder(`mock-shard${k}`)));
    expect(sharded!.parts).to.have.length(3);
    const a = joinedAuditRaw(whole!)!.raw;
    const b = joinedAuditRaw(sharded!)!.raw;
    expect(b.scenarios.length).to.be.greaterThan(100);
    expect(b.scenarios).to.deep.equal(a.scenarios);
    expect(b.backends).to.deep.equal(a.backends);
    // Each shard's own file alone lacks the others' scenarios.
    const shard1 = readRuns([folder('mock-shard1'), folder('mock-shard2'), folder('mock-shard3')])[0]!.parts[0]!;
    expect(shard1.results.filter((r) => r.name.startsWith('audit.')).length).to.be.lessThan(whole!.tests.filter((t) => t.name.startsWith('audit.')).length);
  });

  describe('of two runs', () => {
    let runs: MergedRun[];
    let files: ReturnType<typeof writeMerged>['files'];
    before(() => {
      runs = readRuns([folder('whole'), folder('failing')]);
      ({ files } = writeMerged(runs, folder('merged')));
    });

    it('keeps the runs apart, one failed', () => {
      expect(runs).to.have.length(2);
      expect(runs.map((r) => r.ok).sort()).to.deep.equal([false, true]);
      const failing = runs.find((r) => !r.ok)!;
      expect(failing.counts).to.deep.equal({ pass: 1, fail: 1, skip: 1 });
    });

    it('writes one KTAP file that the kernel\'s KTAP parser (kunit_parser.py) reads as a subtest per run', async function () {
      const kernelDir = (await kernelSourceOrSkip(this, 'for kunit_parser.py')).dir;
      const tree = parseWithKunit(kernelDir, files.ktap);
      expect(tree.errors, JSON.stringify(tree).slice(0, 2000)).to.equal(0);
      expect(tree.status).to.equal('FAILURE');
      expect(tree.subtests.map((s) => s.name)).to.deep.equal(runs.map((r) => r.label));
      tree.subtests.forEach((sub, i) => {
        const r = runs[i]!;
        expect(sub.errors).to.equal(0);
        expect(sub.expected).to.equal(r.tests.length);
        expect(sub.status).to.equal(r.ok ? 'SUCCESS' : 'FAILURE');
        expect(sub.log.join('\n')).to.include(`kernel: ${r.identity.kernel.release}`).and.include(`tool: iommufd-conformance`).and.include(`profile: ${r.identity.profile}`);
        const want = r.tests.map((t) => [t.name, t.status.kind === 'pass' ? 'SUCCESS' : t.status.kind === 'fail' ? 'FAILURE' : 'SKIPPED']);
        expect(sub.subtests.map((t) => [t.name, t.status])).to.deep.equal(want);
      });
    });

    it('writes one KTAP file that tap-parser reads, level by level', () => {
      const text = readFileSync(files.ktap, 'utf8');
      const top = parseTapLevel(text);
      expect(top.plan).to.deep.equal({ start: 1, end: 2 });
      expect(top.asserts.map((a) => [a.id, a.name, a.ok])).to.deep.equal(runs.map((r, i) => [i + 1, r.label, r.ok]));
      expect(top.failures).to.deep.equal([]);
      // Anything tap-parser did not take is the KTAP version line or a nested line.
      expect(top.extra.filter((l) => l !== 'KTAP version 1' && !l.startsWith('  ') && !l.startsWith('#'))).to.deep.equal([]);
      const blocks = nestedBlocks(text);
      expect(blocks).to.have.length(2);
      blocks.forEach((b, i) => {
        const level = parseTapLevel(b);
        const r = runs[i]!;
        expect(level.plan).to.deep.equal({ start: 1, end: r.tests.length });
        expect(level.asserts).to.have.length(r.tests.length);
        expect(level.asserts.map((a) => a.name)).to.deep.equal(r.tests.map((t) => t.name));
        expect(level.asserts.map((a) => a.ok)).to.deep.equal(r.tests.map((t) => t.status.kind !== 'fail'));
        expect(level.asserts.filter((a) => a.skip).length).to.equal(r.counts.skip);
        expect(level.extra).to.deep.equal(['KTAP version 1']);
      });
    });

    it('writes xunit whose suites carry the run', () => {
      const xml = readFileSync(files.xunit, 'utf8');
      for (const r of runs) {
        for (const s of new Set(r.tests.map((t) => suiteOf(t.name)))) expect(xml).to.include(`<testsuite name="${r.label}/${s}"`);
      }
      expect((xml.match(/<testcase /g) ?? []).length).to.equal(runs.reduce((a, r) => a + r.tests.length, 0));
      expect((xml.match(/<failure /g) ?? []).length).to.equal(1);
    });

    it('writes a page that headless Chromium shows as the matrix, every failure linked to its report', function () {
      const missing = chromiumMissing();
      if (missing) {
        if (process.env.CI === 'true') throw new Error(missing);
        skipBecause(this, missing);
      }
      const probe = probeMergedPage(readFileSync(files.html, 'utf8'), folder('merged'));
      expect(mergedPageProblems(probe, runs, files.html)).to.deep.equal([]);
      expect(probe.cells.some((c) => c.classes.includes('failed'))).to.equal(true);
      // The check itself finds a page that lies: the failure's counts shown as a pass.
      const lying = readFileSync(files.html, 'utf8').replace(/1 \/ 1 \/ 1/, '2 / 0 / 1');
      expect(mergedPageProblems(probeMergedPage(lying, folder('merged')), runs, files.html).join('\n')).to.match(/shows '.*2 \/ 0 \/ 1.*', the run has 1 \/ 1 \/ 1/);
    });
  });
});

describe('merge: parity per kernel', () => {
  // Two runs of the mirror on two kernels: each table is built from the selftest cases of the kernel it ran on.
  const mirrorRun = (release: string, packageVersion: string): MergedRun =>
    ({
      label: `mock@${release}`,
      identity: { kernel: { release, version: '#1', machine: 'x86_64', packageVersion, configSha256: null, flavour: 'base' } },
      parts: [{ dir: `/results/${release}` }],
      tests: [{ name: 'iommufd.simple_close', status: { kind: 'pass' } }],
      problems: [],
      counts: { pass: 1, fail: 0, skip: 0 },
      ok: true,
    }) as unknown as MergedRun;
  const ours = new Map([['iommufd.simple_close', 'suites/vm/mock/selftest/iommufd.test.ts']]);

  it('builds each run\'s table from the selftests of the kernel that run booted', () => {
    const cases = {
      '6.12.117-1': [{ name: 'iommufd.simple_close' }],
      '7.2.13-1': [{ name: 'iommufd.simple_close' }, { name: 'iommufd.viommu_alloc' }],
    } as Record<string, { name: string }[]>;
    const tables = kernelParities(
      [mirrorRun('6.12.117', '6.12.117-1'), mirrorRun('7.2.13', '7.2.13-1')],
      (run) => ({
        cases: cases[run.identity.kernel.packageVersion!] as never,
        kernel: parityKernel(`Linux ${run.identity.kernel.release}`, run.identity.kernel.release),
      }),
      ours,
    );
    expect(tables.map((t) => [t.kernel, t.table.rows.length])).to.deep.equal([['6.12.117', 1], ['7.2.13', 2]]);
    expect(parityHolds(tables[0]!.table)).to.equal(true);
    expect(tables[1]!.table.rows.find((r) => r.kernel === 'iommufd.simple_close')?.ours).to.equal('suites/vm/mock/selftest/iommufd.test.ts');
    // The mirror follows 7.2's selftests too: a 7.2 case without a test of ours is listed, and fails its table.
    expect(tables[1]!.table.rows.find((r) => r.kernel === 'iommufd.viommu_alloc')?.ours ?? null).to.equal(null);
    expect(parityHolds(tables[1]!.table)).to.equal(false);
  });

  it('leaves out a run whose kernel source is not known, rather than comparing it with another kernel\'s cases', () => {
    expect(kernelParities([mirrorRun('7.2.13', '7.2.13-1')], () => null, ours)).to.deep.equal([]);
  });
});
