// The kernel's own selftests beside ours: the harness output parser, the
// per-tree shim probe, the side-by-side verdicts and the VFIO -> audit witness.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { AUDIT_WITNESS, checkWitness } from '../../lib/kselftest/audit-witness.ts';
import { libraryPackages, testPrograms } from '../../lib/kselftest/build.ts';
import { parseKselftestOutput, type KselftestCase } from '../../lib/kselftest/ktap.ts';
import { shimsNeeded } from '../../lib/kselftest/shims.ts';
import { sideBySideProblems, sideBySideRows, staleExplanations, type Explanation } from '../../lib/kselftest/side-by-side.ts';
import type { CaseStatus } from '../../lib/parity/table.ts';

const HARNESS = `TAP version 13
1..3
# Starting 3 tests from 1 test cases.
#  RUN           f.v.a ...
# iommufd.c:12:a:Expected 0 (0) == rc (22)
#            FAIL  f.v.a
not ok 1 f.v.a
#  RUN           f.v.b ...
Mapped HVA 0x7f at IOVA 0x1000
#      SKIP      no huge pages
#            OK  f.v.b
ok 2 f.v.b # SKIP no huge pages
#  RUN           f.v.c ...
#            OK  f.v.c
ok 3 f.v.c
# FAILED: 1 / 3 tests passed.
# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0
`;

describe('kselftest', () => {
  describe('harness output', () => {
    it('gives each case its status, skip reason and what it printed', () => {
      const run = parseKselftestOutput(HARNESS);
      expect(run.planned).to.equal(3);
      expect(run.incomplete).to.equal(null);
      expect(run.cases.map((c) => [c.name, c.status])).to.deep.equal([['f.v.a', 'fail'], ['f.v.b', 'skip'], ['f.v.c', 'pass']]);
      expect(run.cases[0]!.output).to.deep.equal(['# iommufd.c:12:a:Expected 0 (0) == rc (22)']);
      expect(run.cases[1]!.reason).to.equal('no huge pages');
      expect(run.cases[1]!.output).to.include('Mapped HVA 0x7f at IOVA 0x1000');
    });

    it('reports a binary that died mid-case: the started case not run, the run incomplete', () => {
      const text = HARNESS.split('#  RUN           f.v.c')[0] + '#  RUN           f.v.c ...\nSegmentation fault\n';
      const run = parseKselftestOutput(text);
      expect(run.cases.at(-1)).to.deep.include({ name: 'f.v.c', status: 'not-run' });
      expect(run.incomplete).to.match(/f\.v\.c started and never reported/);
    });

    it('reports output with no TAP at all as incomplete', () => {
      expect(parseKselftestOutput('sh: ./iommufd: not found\n').incomplete).to.match(/did not run/);
    });
  });

  describe('build', () => {
    let tree: string;
    before(() => {
      tree = mkdtempSync(join(tmpdir(), 'kselftest-tree-'));
      mkdirSync(join(tree, 'tools/testing/selftests/iommu'), { recursive: true });
      mkdirSync(join(tree, 'drivers/iommu/iommufd'), { recursive: true });
      mkdirSync(join(tree, 'include/linux'), { recursive: true });
      writeFileSync(join(tree, 'tools/testing/selftests/iommu/Makefile'), 'CFLAGS += -Wall\nLDLIBS += -lcap\nTEST_GEN_PROGS :=\nTEST_GEN_PROGS += iommufd\nTEST_GEN_PROGS += iommufd_fail_nth\n');
      writeFileSync(join(tree, 'tools/testing/selftests/iommu/iommufd.c'), 'x.in_data_type = IOMMU_HW_INFO_TYPE_DEFAULT; y = MOCK_PASID_WIDTH;\n');
      writeFileSync(join(tree, 'tools/testing/selftests/iommu/iommufd_utils.h'), 'static void f(void) { struct s v = { .in_data_type = 1 }; }\n');
      writeFileSync(join(tree, 'drivers/iommu/iommufd/iommufd_test.h'), '#define MOCK_PASID_WIDTH 20\n');
      writeFileSync(join(tree, 'include/linux/iommufd.h'), 'enum { IOMMU_HW_INFO_TYPE_DEFAULT = 0, };\n');
    });
    after(() => rmSync(tree, { recursive: true, force: true }));

    it("shims only what the tree's selftests use and its headers lack (a designated initialiser in the suite's own header defines nothing)", () => {
      expect(shimsNeeded(tree, join(tree, 'include'), 'iommu').map((s) => s.name)).to.deep.equal(['in_data_type']);
    });

    it("reads the programs and the libraries from the suite's Makefile", () => {
      expect(testPrograms('TEST_GEN_PROGS :=\nTEST_GEN_PROGS += a\nTEST_GEN_PROGS += b\n')).to.deep.equal(['a', 'b']);
      expect(libraryPackages(tree, 'iommu')).to.deep.equal(['libcap-dev']);
    });
  });

  describe('side by side', () => {
    const kernel = (name: string, status: KselftestCase['status']): KselftestCase => ({ name, status, output: [`${name} said ${status}`] });
    const ours = new Map([['f.a', 'suites/x.test.ts'], ['f.b', 'suites/x.test.ts'], ['f.c', 'suites/x.test.ts']]);
    const statuses = new Map<string, CaseStatus>([['f.a', { kind: 'pass' }], ['f.b', { kind: 'skip', reason: 'no PASID' }], ['f.c', { kind: 'fail', message: 'boom' }]]);
    const cases = [kernel('f.a', 'pass'), kernel('f.b', 'fail'), kernel('f.c', 'pass'), kernel('f.d', 'pass')];

    it('a case exactly one side passes is a disagreement; neither passing is not; an unmirrored case is listed', () => {
      const rows = sideBySideRows('iommufd', cases, ours, statuses, [], '7.2.13');
      expect(rows.map((r) => [r.kernelCase.name, r.disagreement, r.ours !== null])).to.deep.equal([
        ['f.a', false, true], ['f.b', false, true], ['f.c', true, true], ['f.d', false, false],
      ]);
      const problems = sideBySideProblems({ kernelVersion: '7.2.13', rows, incomplete: [], notInTree: [], stale: [], witness: [] });
      expect(problems).to.deep.equal(['1 case(s) one side passes and the other does not, unexplained']);
    });

    it('an explanation applies to its kernel series and status pair only, and goes stale when its case agrees', () => {
      const e: Explanation = { case: 'f.c', kernel: '7.2', kernelStatus: 'pass', oursStatus: 'fail', reason: 'why' };
      expect(sideBySideRows('iommufd', cases, ours, statuses, [e], '7.2.13')[2]!.explanation).to.equal(e);
      expect(sideBySideRows('iommufd', cases, ours, statuses, [e], '6.12.117')[2]!.explanation).to.equal(undefined);
      const agreeing = new Map(statuses).set('f.c', { kind: 'pass' });
      const rows = sideBySideRows('iommufd', cases, ours, agreeing, [e], '7.2.13');
      expect(staleExplanations(rows, [e], '7.2.13')).to.deep.equal([e]);
      expect(staleExplanations(rows, [e], '6.12.117')).to.deep.equal([]);
    });
  });

  describe('audit witness', () => {
    let dir: string;
    before(() => (dir = mkdtempSync(join(tmpdir(), 'kselftest-witness-'))));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const step = (errno: string, out?: Record<string, string>) => ({ op: 'VFIO_IOMMU_MAP_DMA', errno, ...(out ? { out } : {}) });
    const raw = (wrapErrno: string) => ({
      format: 1, profile: 'viommu', kernel: 'x', backends: {},
      scenarios: [
        { id: 'map-dma.iova-wraps', area: 'MAP_DMA', title: '', results: { type1: { status: 'ran', kernel: { steps: [step(wrapErrno)] }, model: { steps: [] } } } },
        { id: 'unmap-dma.iova-wraps', area: 'UNMAP_DMA', title: '', results: { type1: { status: 'ran', kernel: { steps: [step(wrapErrno)] }, model: { steps: [] } } } },
      ],
    });
    const overflow = 'vfio_dma_map_limit_test.vfio_type1v2_iommu.overflow';

    it('names only cases and scenarios that exist in the selftest and the catalogue', async () => {
      const { CATALOGUE } = await import('../../lib/audit/scenarios.ts');
      const ids = new Set(CATALOGUE.map((s: { id: string }) => s.id));
      for (const e of AUDIT_WITNESS) for (const c of e.checks) expect(ids.has(c.scenario), c.scenario).to.equal(true);
    });

    it('agrees when the VFIO case passes and the audit saw what it asserts, and disagrees when not', () => {
      const file = join(dir, 'audit-raw.json');
      const vfio = new Map([[overflow, { name: overflow, status: 'pass' as const, output: [] }]]);
      writeFileSync(file, JSON.stringify(raw('EOVERFLOW')));
      expect(checkWitness(vfio, file).find((w) => w.entry.vfioCase === overflow)!.verdict).to.equal('agree');
      writeFileSync(file, JSON.stringify(raw('EINVAL')));
      const row = checkWitness(vfio, file).find((w) => w.entry.vfioCase === overflow)!;
      expect(row.verdict).to.equal('DISAGREE');
      expect(row.audit).to.deep.equal(['map-dma.iova-wraps#0 EINVAL', 'unmap-dma.iova-wraps#0 EINVAL']);
      const failed = new Map([[overflow, { name: overflow, status: 'fail' as const, output: [] }]]);
      expect(checkWitness(failed, file).find((w) => w.entry.vfioCase === overflow)!.verdict).to.equal('agree');
    });

    it('does not compare a skipped case or a scenario the audit did not run', () => {
      const file = join(dir, 'audit-raw.json');
      writeFileSync(file, JSON.stringify(raw('EOVERFLOW')));
      const skipped = new Map([[overflow, { name: overflow, status: 'skip' as const, reason: 'x', output: [] }]]);
      expect(checkWitness(skipped, file).find((w) => w.entry.vfioCase === overflow)!.verdict).to.equal('not compared');
      const compat = checkWitness(skipped, file).find((w) => w.entry.backend === 'compat-device')!;
      expect(compat.verdict).to.equal('not compared');
      expect(compat.note).to.match(/no compat-device result/);
    });
  });
});
