// The parity table's sources: the kernel's case list parsed from C, and the
// KTAP statuses our reporter writes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseSelftestCases } from '../../lib/parity/kernel-cases.ts';
import { buildParity, parityHolds, parityKernel, parityLine, parityNote, readKtapStatuses } from '../../lib/parity/table.ts';

const SOURCE = `
#define TEST_FAIL_NTH(fixture_name, name)          \\
	static int test_nth_##name(void);            \\
	TEST_F(fixture_name, name)                   \\
	{                                            \\
	}

FIXTURE(plain) {};
FIXTURE(varied) {};
FIXTURE_VARIANT(varied) {};
FIXTURE_VARIANT_ADD(varied, one) {};
/* FIXTURE_VARIANT_ADD(varied, commented_out) */
FIXTURE_VARIANT_ADD(varied, two) {};
TEST_F(plain, a) {}
TEST_F(varied, b) {}
TEST_F(varied, c) {}
TEST(standalone) {}
TEST_FAIL_NTH(plain, nth) {}
`;

describe('parity', () => {
  it('names cases as the kselftest harness does, leaving out macro bodies and comments', () => {
    const names = parseSelftestCases(SOURCE, 'x.c').map((c) => c.name);
    expect(names).to.deep.equal(['plain.a', 'varied.one.b', 'varied.two.b', 'varied.one.c', 'varied.two.c', 'standalone', 'plain.nth']);
  });

  it('reads pass, fail and skip (with its reason) from KTAP, and marks what is missing or unknown', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parity-'));
    try {
      const ktap = join(dir, 'results.ktap');
      writeFileSync(ktap, ['KTAP version 1', '# kernel: linux-source-6.12 6.12.117-1~deb12u1', '1..3', 'ok 1 plain.a', '# varied.one.b: expected 0 to equal 22', '# lockstep: the second line', 'not ok 2 varied.one.b',
        'ok 3 varied.two.b # SKIP needs MOCK_FLAGS_DEVICE_PASID', '# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0', ''].join('\n'));
      const statuses = readKtapStatuses(ktap);
      expect(statuses.get('plain.a')).to.deep.equal({ kind: 'pass' });
      // A whole, multi-line message, as the reporter writes it.
      expect(statuses.get('varied.one.b')).to.deep.equal({ kind: 'fail', message: 'expected 0 to equal 22\nlockstep: the second line' });
      expect(statuses.get('varied.two.b')).to.deep.equal({ kind: 'skip', reason: 'needs MOCK_FLAGS_DEVICE_PASID' });

      const kernel = parseSelftestCases(SOURCE, 'x.c');
      const all = new Map(kernel.map((c) => [c.name, 'suites/x.test.ts']));
      expect(parityHolds(buildParity(kernel, all, statuses, ktap))).to.equal(true);
      const missing = new Map(all);
      missing.delete('standalone');
      const t = buildParity(kernel, missing, statuses, ktap);
      expect(parityHolds(t)).to.equal(false);
      expect(t.rows.find((r) => r.kernel === 'standalone')!.ours).to.equal(null);
      expect(t.rows.find((r) => r.kernel === 'varied.one.c')!.status).to.deep.equal({ kind: 'not-run' });
      const extra = new Map(all).set('plain.typo', 'suites/x.test.ts');
      expect(buildParity(kernel, extra, statuses, ktap).extra).to.deep.equal([{ name: 'plain.typo', file: 'suites/x.test.ts' }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('against a kernel the mirror does not follow yet, reports the gap as expected instead of failing', () => {
    const kernel = parseSelftestCases(SOURCE, 'x.c');
    const ours = new Map(kernel.filter((c) => c.name !== 'standalone').map((c) => [c.name, 'suites/x.test.ts'] as [string, string]));
    ours.set('plain.gone_upstream', 'suites/x.test.ts');
    expect(parityKernel('linux-source-6.12 6.12.117-1~deb12u1', '6.12.117').mirrored).to.equal(true);
    // The mirror follows 7.2's selftests too (issue 13): every 7.2 case must be mirrored.
    expect(parityKernel('linux-source-7.2 7.2.13-1, Linux 7.2.13', '7.2.13').mirrored).to.equal(true);
    const rc = parityKernel('linux-source-7.3 7.3~rc7-1~exp1, Linux 7.3.0-rc7', '7.3.0-rc7');
    expect(rc.mirrored).to.equal(false);
    const t = buildParity(kernel, ours, new Map(), null, rc);
    expect(parityHolds(t)).to.equal(true);
    expect(parityNote(t)).to.match(/1 of its 7 selftest cases are not mirrored and 1 of ours are not among its cases; expected: the mirror follows the selftests of 6\.12 and 7\.2/);
    expect(parityLine(t)).to.match(/^parity \(linux-source-7\.3 7\.3~rc7-1~exp1, Linux 7\.3\.0-rc7\): 6\/7 .*not mirrored yet, expected/);
    const mirrored = buildParity(kernel, ours, new Map(), null, parityKernel('6.12', '6.12.117'));
    expect(parityHolds(mirrored)).to.equal(false);
    expect(parityNote(mirrored)).to.equal(null);
  });

  it('against the mirrored kernel, a test named after a later served kernel\'s case is that case, not an unknown test', () => {
    const kernel = parseSelftestCases(SOURCE, 'x.c');
    const ours = new Map(kernel.map((c) => [c.name, 'suites/x.test.ts'] as [string, string]));
    ours.set('plain.map_file', 'suites/x.test.ts').set('plain.typo', 'suites/x.test.ts');
    const t = buildParity(kernel, ours, new Map(), null, parityKernel('6.12', '6.12.117'), new Set(['plain.map_file']));
    expect(t.later).to.deep.equal([{ name: 'plain.map_file', file: 'suites/x.test.ts' }]);
    expect(t.extra).to.deep.equal([{ name: 'plain.typo', file: 'suites/x.test.ts' }]);
    expect(parityHolds(t)).to.equal(false);
    ours.delete('plain.typo');
    expect(parityHolds(buildParity(kernel, ours, new Map(), null, parityKernel('6.12', '6.12.117'), new Set(['plain.map_file'])))).to.equal(true);
  });
});

describe('parity: our mirror, asked for twice in one process', () => {
  it('gives the same tests both times (the suites are ES modules, imported once)', function () {
    this.timeout(120000);
    const root = join(import.meta.dirname, '../..');
    // As bin/iommufd-conformance.js runs the tool: tsx's ESM loader alone, so the suites are imported, never required.
    const script = `
      const { register } = await import('tsx/esm/api');
      register();
      const { mirroredTests } = await import(${JSON.stringify(join(root, 'lib/cli/parity.ts'))});
      const a = await mirroredTests();
      const b = await mirroredTests();
      console.log(JSON.stringify([a.size, b.size]));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const [first, second] = JSON.parse(r.stdout.trim().split('\n').pop()!) as [number, number];
    expect(first).to.be.greaterThan(190);
    expect(second).to.equal(first);
  });
});
