// The audit's host side on hand-written raw files: merging the profiles,
// the differences between type1 and each compat backend, the check against
// the known differences, the verdict (an unlisted difference, a stale listed
// one, a model mismatch and a missing profile all fail it), the strict
// known-differences loader, and the reports the CLI writes. The last suite
// checks the real fixtures/audit/known-differences.json against the kernel
// source it cites.
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appliesTo, appliesToBaseline, KNOWN_DIFFERENCES_PATH, KnownDifferencesError, knownDifferenceAnchor, loadKnownDifferences, parseKnownDifferences, type KnownDifference } from '../../lib/audit/known-differences.ts';
import { AuditInputError, auditJson, diffObservations, buildAudit, summaryLines, validateRaw, type Audit, type LoadedRaw } from '../../lib/audit/report.ts';
import { renderMarkdown } from '../../lib/audit/render-markdown.ts';
import { switchSummaries } from '../../lib/audit/switches.ts';
import { auditFromFolders, citationOutcome, kernelCitationProblems, writeAuditReports } from '../../lib/audit/write.ts';
import type { AuditRaw } from '../../lib/audit/types.ts';
import { main } from '../../lib/cli/main.ts';
import { skipBecause } from '../support/skip.ts';
import { catalogue, knownForCatalogue, knownJson, mockRaw, ran, step, viommuRaw, writeRunFolder, type Catalogue } from './fixtures/audit-raw.fixture.ts';

function loaded(...raws: AuditRaw[]): LoadedRaw[] {
  return raws.map((raw) => ({ path: `/fixture/${raw.profile}/audit-raw.json`, raw: validateRaw(JSON.parse(JSON.stringify(raw)), raw.profile) }));
}

function auditOf(cat: Catalogue, known: KnownDifference[] = knownForCatalogue()): Audit {
  return buildAudit(loaded(viommuRaw(cat), mockRaw(cat)), known);
}

function comparison(a: Audit, id: string, other: 'compat-device' | 'compat-mock') {
  const row = a.rows.find((r) => r.id === id);
  expect(row, `row ${id}`).to.not.equal(undefined);
  return row!.comparisons.find((c) => c.between[1] === other)!;
}

describe('audit report', () => {
  after(() => {
    for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  describe('merge and compare', () => {
    it('merges both profiles into one row a scenario, in catalogue order, with every backend', () => {
      const a = auditOf(catalogue());
      expect(a.rows.map((r) => r.id)).to.deep.equal(Object.keys(catalogue()));
      for (const row of a.rows) expect(Object.keys(row.cells)).to.deep.equal(['type1', 'compat-device', 'compat-mock', 'native']);
      expect(a.profiles.viommu.state).to.equal('ran');
      expect(a.profiles.mock.state).to.equal('ran');
      expect(a.rows.find((r) => r.id === 'group.set-container-twice')!.cells['compat-mock']).to.deep.equal({ status: 'not-applicable', reason: 'a mock domain has no VFIO group' });
    });

    it('passes when every difference is listed exactly and the model agrees everywhere', () => {
      const a = auditOf(catalogue());
      expect(a.verdict.failures).to.deep.equal([]);
      expect(a.verdict.ok).to.equal(true);
      expect(a.verdict.comparisons).to.include({ explained: 4, unexplained: 0, changed: 0, stale: 0 });
      expect(comparison(a, 'map-dma.argsz-short', 'compat-device').state).to.equal('same');
      expect(comparison(a, 'group.set-container-twice', 'compat-mock').state).to.equal('not-compared');
    });

    it('uses the normalised outputs across profiles only', () => {
      const a = auditOf(catalogue());
      // Same machine: compared raw, and they agree; across profiles the raw ranges differ but normalise equal.
      expect(comparison(a, 'get-info.iova-ranges', 'compat-device')).to.include({ state: 'same', normalised: false });
      expect(comparison(a, 'get-info.iova-ranges', 'compat-mock')).to.include({ state: 'same', normalised: true });
      // The same raw difference between type1 and compat-device is a difference (normalisation does not hide it there).
      const cat = catalogue();
      cat['get-info.iova-ranges']!.results['compat-device'] = ran([step('IOMMU_VFIO_IOAS(SET)', 'OK'), step('VFIO_SET_IOMMU(type1v2)', 'OK'), step('VFIO_IOMMU_GET_INFO', 'OK', { flags: 3, ranges: '0x0-0xffffffffffffffff' }, { ranges: 'covers-[0x0,0xfedfffff]' })]);
      const b = auditOf(cat);
      const c = comparison(b, 'get-info.iova-ranges', 'compat-device');
      expect(c.state).to.equal('unexplained');
      expect(c.points).to.deep.equal([{ field: 'out.ranges', steps: [2, 2], op: 'VFIO_IOMMU_GET_INFO', values: ['0x0-0xfedfffff,0xfef00000-0x7fffffffff', '0x0-0xffffffffffffffff'] }]);
    });

    it("compares steps by position: a backend's own name for a step is no difference, its errno is", () => {
      const obs = (...steps: ReturnType<typeof step>[]) => ({ steps });
      expect(diffObservations(obs(step('VFIO_GROUP_SET_CONTAINER', 'OK'), step('X', 'OK')), obs(step('IOMMU_IOAS_ALLOC+IOMMU_VFIO_IOAS(SET)', 'OK'), step('X', 'OK')), true)).to.deep.equal([]);
      expect(diffObservations(obs(step('A', 'OK'), step('X', 'OK')), obs(step('B', 'ENODEV'), step('X', 'OK')), false)).to.deep.equal([
        { field: 'errno', steps: [0, 0], op: 'A / B', values: ['OK', 'ENODEV'] },
      ]);
      expect(diffObservations(obs(step('A', 'OK'), step('X', 'EINVAL')), obs(step('A', 'OK')), false)).to.deep.equal([
        { field: 'errno', steps: [1, 1], op: 'X', values: ['EINVAL', '(absent)'] },
      ]);
      // A failing setup step is a difference even when the steps under audit agree.
      const cat = catalogue();
      cat['map-dma.argsz-short']!.results['compat-device'] = ran([step('IOMMU_VFIO_IOAS(SET)', 'OK'), step('VFIO_SET_IOMMU(type1v2)', 'ENODEV'), step('VFIO_IOMMU_MAP_DMA', 'EINVAL')]);
      const c = comparison(auditOf(cat), 'map-dma.argsz-short', 'compat-device');
      expect(c.state).to.equal('unexplained');
      expect(c.points.map((p) => [p.op, p.field, p.steps])).to.deep.equal([['VFIO_SET_IOMMU(type1v2)', 'errno', [1, 1]]]);
    });

    it('does not compare type1 with compat-mock on a platform-dependent scenario, and fails an entry listed for it', () => {
      const cat = catalogue();
      cat['unmap-dma.v1-half']!.platformDependent = 'the IO page size: 2 KiB on the mock, 4 KiB on VT-d';
      const known = knownForCatalogue().filter((k) => !(k.scenario === 'unmap-dma.v1-half' && k.between[1] === 'compat-mock'));
      const a = auditOf(cat, known);
      expect(a.verdict.ok).to.equal(true);
      expect(comparison(a, 'unmap-dma.v1-half', 'compat-mock')).to.deep.include({ state: 'not-compared', detail: ['platform-dependent: the IO page size: 2 KiB on the mock, 4 KiB on VT-d'] });
      expect(comparison(a, 'unmap-dma.v1-half', 'compat-device').state).to.equal('explained');
      const b = auditOf(cat);
      expect(comparison(b, 'unmap-dma.v1-half', 'compat-mock').state).to.equal('stale');
      expect(b.verdict.failures.join('\n')).to.match(/not compared for this scenario .*: remove the entry/);
    });
  });

  describe('verdict', () => {
    it('fails on a difference that is not listed', () => {
      const a = auditOf(catalogue(), knownForCatalogue().filter((k) => !(k.scenario === 'map-dma.flags-zero' && k.between[1] === 'compat-mock')));
      expect(a.verdict.ok).to.equal(false);
      const c = comparison(a, 'map-dma.flags-zero', 'compat-mock');
      expect(c.state).to.equal('unexplained');
      expect(c.anchor).to.equal('diff-map-dma.flags-zero--type1--compat-mock');
      expect(a.verdict.failures).to.have.length(1);
      expect(a.verdict.failures[0]).to.match(/^map-dma\.flags-zero: type1 vs compat-mock differ and no known difference lists it: VFIO_IOMMU_MAP_DMA errno: EINVAL vs OK/);
      // The listed pair of the same scenario is still explained.
      expect(comparison(a, 'map-dma.flags-zero', 'compat-device').state).to.equal('explained');
    });

    it('fails on a listed difference that no longer shows: the kernel changed', () => {
      const cat = catalogue();
      cat['map-dma.flags-zero']!.results['compat-device'] = ran([step('IOMMU_VFIO_IOAS(SET)', 'OK'), step('VFIO_SET_IOMMU(type1v2)', 'OK'), step('VFIO_IOMMU_MAP_DMA', 'EINVAL')]);
      const a = auditOf(cat);
      const c = comparison(a, 'map-dma.flags-zero', 'compat-device');
      expect(c.state).to.equal('stale');
      expect(a.verdict.ok).to.equal(false);
      expect(a.verdict.comparisons.stale).to.equal(1);
      expect(a.verdict.failures.join('\n')).to.match(/map-dma\.flags-zero: type1 vs compat-device: listed but no longer shows: .*the kernel changed/);
    });

    it('fails on a listed difference whose scenario became not applicable', () => {
      const cat = catalogue();
      cat['unmap-dma.v1-half']!.results['compat-mock'] = { status: 'not-applicable', reason: 'no mock domain' };
      const a = auditOf(cat);
      expect(comparison(a, 'unmap-dma.v1-half', 'compat-mock').state).to.equal('stale');
      expect(a.verdict.ok).to.equal(false);
    });

    it('fails on a listed difference that now differs in another way', () => {
      // The errno is still a difference, but not the one listed.
      const cat = catalogue();
      cat['map-dma.flags-zero']!.results['compat-device'] = ran([step('IOMMU_VFIO_IOAS(SET)', 'OK'), step('VFIO_SET_IOMMU(type1v2)', 'OK'), step('VFIO_IOMMU_MAP_DMA', 'EFAULT')]);
      const a = auditOf(cat);
      const c = comparison(a, 'map-dma.flags-zero', 'compat-device');
      expect(c.state).to.equal('changed');
      expect(c.detail).to.deep.equal(['compat-device VFIO_IOMMU_MAP_DMA: listed errno OK, now EFAULT']);
      expect(a.verdict.ok).to.equal(false);
      // A new output difference the entry does not name also counts as changed.
      const cat2 = catalogue();
      cat2['map-dma.flags-zero']!.results['compat-device'] = ran([step('IOMMU_VFIO_IOAS(SET)', 'OK'), step('VFIO_SET_IOMMU(type1v2)', 'OK'), step('VFIO_IOMMU_MAP_DMA', 'OK', { iova: '0' })]);
      const c2 = comparison(auditOf(cat2), 'map-dma.flags-zero', 'compat-device');
      expect(c2.state).to.equal('changed');
      expect(c2.detail!.join('\n')).to.match(/not named by the entry: VFIO_IOMMU_MAP_DMA out\.iova: type1 \(absent\), compat-device "0"/);
    });

    it('fails on a model mismatch, and on a model that threw, even where the backends agree', () => {
      const cat = catalogue();
      cat['map-dma.argsz-short']!.results['compat-mock'] = ran(
        [step('IOMMU_VFIO_IOAS(SET)', 'OK'), step('VFIO_SET_IOMMU(type1v2)', 'OK'), step('VFIO_IOMMU_MAP_DMA', 'EINVAL')],
        [step('IOMMU_VFIO_IOAS(SET)', 'OK'), step('VFIO_SET_IOMMU(type1v2)', 'OK'), step('VFIO_IOMMU_MAP_DMA', 'OK')],
      );
      const t1 = cat['get-info.iova-ranges']!.results.type1!;
      if (t1.status !== 'ran') throw new Error('the fixture runs get-info.iova-ranges on type1');
      cat['get-info.iova-ranges']!.results.type1 = ran(t1.kernel.steps, { error: 'TypeError: x is undefined' });
      const a = auditOf(cat);
      expect(a.verdict.ok).to.equal(false);
      expect(a.verdict.modelMismatches).to.deep.equal([
        { scenario: 'map-dma.argsz-short', backend: 'compat-mock', detail: ['step 2 VFIO_IOMMU_MAP_DMA: errno: kernel EINVAL, model OK'] },
        { scenario: 'get-info.iova-ranges', backend: 'type1', detail: ['the model threw: TypeError: x is undefined'] },
      ]);
      // The kernel-vs-kernel comparison is not affected.
      expect(comparison(a, 'map-dma.argsz-short', 'compat-mock').state).to.equal('same');
      // An output the model does not predict is a mismatch too.
      const cat2 = catalogue();
      cat2['unmap-dma.v1-half']!.results['compat-device'] = ran(
        [step('IOMMU_VFIO_IOAS(SET)', 'OK'), step('VFIO_SET_IOMMU(type1)', 'OK'), step('VFIO_IOMMU_MAP_DMA', 'OK'), step('VFIO_IOMMU_UNMAP_DMA', 'OK', { size: '4096' })],
        [step('IOMMU_VFIO_IOAS(SET)', 'OK'), step('VFIO_SET_IOMMU(type1)', 'OK'), step('VFIO_IOMMU_MAP_DMA', 'OK'), step('VFIO_IOMMU_UNMAP_DMA', 'OK')],
      );
      expect(auditOf(cat2).verdict.modelMismatches[0]!.detail).to.deep.equal(['step 3 VFIO_IOMMU_UNMAP_DMA: out.size: kernel "4096", model (absent)']);
    });

    it('reports a profile that did not run as missing backends, and fails', () => {
      const a = buildAudit(loaded(viommuRaw()), knownForCatalogue());
      expect(a.profiles.mock).to.deep.equal({ state: 'missing' });
      expect(a.backends['compat-mock']).to.include({ state: 'missing', profile: 'mock' });
      expect(a.verdict.ok).to.equal(false);
      expect(a.verdict.problems).to.deep.equal(['backend compat-mock missing: profile mock did not run (no audit-raw.json)']);
      for (const row of a.rows) {
        expect(row.cells['compat-mock'].status).to.equal('missing');
        expect(row.comparisons.find((c) => c.between[1] === 'compat-mock')!.state).to.equal('not-compared');
      }
      // type1 against compat-device is still checked.
      expect(a.verdict.comparisons.explained).to.equal(2);
      // Nothing at all is not a pass either.
      const none = buildAudit([], []);
      expect(none.verdict.ok).to.equal(false);
      expect(none.verdict.problems).to.have.length(4);
      expect(none.rows).to.deep.equal([]);
    });

    it('reports a backend the guest found unavailable, with its reason, and fails', () => {
      const a = buildAudit(loaded(viommuRaw(), mockRaw(catalogue(), false)), knownForCatalogue());
      expect(a.backends['compat-mock']).to.deep.equal({ profile: 'mock', state: 'unavailable', reason: 'IOMMU_TEST_OP_MOCK_DOMAIN fails: the mock device has no IOMMU' });
      expect(a.verdict.ok).to.equal(false);
      expect(a.verdict.failures[0]).to.match(/^backend compat-mock unavailable: IOMMU_TEST_OP_MOCK_DOMAIN fails/);
    });

    // 6.1 (no iommufd): the guests mark both compat backends skipped; type1 runs and is judged alone.
    it('reports a backend the kernel lacks as skipped, with its reason, and fails nothing for it; every backend skipped fails', () => {
      const lacks = 'no /dev/iommu: /dev/iommu does not exist and the kernel has no iommufd';
      const viommu = viommuRaw();
      viommu.backends['compat-device'] = { available: false, reason: lacks, skipped: true };
      viommu.backends.native = { available: false, reason: lacks, skipped: true };
      for (const s of viommu.scenarios) {
        s.results['compat-device'] = { status: 'not-applicable', reason: `backend skipped: ${lacks}` };
        s.results.native = { status: 'not-applicable', reason: `backend skipped: ${lacks}` };
      }
      const mock = mockRaw();
      mock.backends['compat-mock'] = { available: false, reason: lacks, skipped: true };
      for (const s of mock.scenarios) s.results['compat-mock'] = { status: 'not-applicable', reason: `backend skipped: ${lacks}` };
      const a = buildAudit(loaded(viommu, mock), []);
      expect(a.backends['compat-device']).to.deep.equal({ profile: 'viommu', state: 'skipped', reason: lacks });
      expect(a.rows[0]!.cells['compat-mock']).to.deep.equal({ status: 'skipped', reason: lacks });
      expect(a.rows.every((r) => r.comparisons.every((c) => c.state === 'not-compared'))).to.equal(true);
      expect(a.verdict.failures).to.deep.equal([]);
      expect(a.verdict.ok).to.equal(true);
      viommu.backends.type1 = { available: false, reason: lacks, skipped: true };
      const none = buildAudit(loaded(viommu, mock), []);
      expect(none.verdict.ok).to.equal(false);
      expect(none.verdict.failures).to.include('every backend was skipped: the audit ran nothing');
    });

    it('refuses "skipped" on an available backend in a raw file', () => {
      const raw = viommuRaw() as unknown as { backends: Record<string, unknown> };
      raw.backends.type1 = { available: true, skipped: true };
      expect(() => validateRaw(raw, 'x')).to.throw(AuditInputError, /"skipped" must be a boolean, and only on an unavailable backend/);
    });

    it('fails when the profiles ran different catalogues or kernels', () => {
      const cat = catalogue();
      const mock = mockRaw(cat);
      mock.scenarios.pop();
      mock.kernel = '6.13.0';
      const a = buildAudit(loaded(viommuRaw(cat), mock), knownForCatalogue());
      expect(a.verdict.problems.join('\n')).to.match(/scenario unmap-dma\.v1-half is only in the raw file of viommu/);
      expect(a.verdict.problems.join('\n')).to.match(/different kernels/);
      expect(a.verdict.ok).to.equal(false);
    });
  });

  describe("known differences limited to kernels by 'when' (KernelBehaviour and Type1Behaviour switches)", () => {
    // map-dma.flags-zero as a kernel whose type1 changed would show it: 6.12's entry and a later kernel's,
    // each limited by type1WrapOverflow, the switch the viommu guest records from its probe.
    const SRC_TREE_FILE = 'drivers/vfio/vfio_iommu_type1.c';
    const SRC_TEXT = 'static int vfio_dma_do_map(struct vfio_iommu *iommu)\n{\n\tif (check_add_overflow(iova, size - 1, &iova_end))\n\t\treturn -EOVERFLOW;\n\treturn 0;\n}\n';
    const source = [{ file: SRC_TREE_FILE, function: 'vfio_dma_do_map', lines: { '7.2.13': '3-4' }, excerpt: 'if (check_add_overflow(iova, size - 1, &iova_end))\n\treturn -EOVERFLOW;' }];
    const entries = (): KnownDifference[] => {
      const base = knownForCatalogue().filter((k) => k.scenario !== 'map-dma.flags-zero');
      const old = knownForCatalogue().filter((k) => k.scenario === 'map-dma.flags-zero').map((k) => ({ ...k, when: { type1WrapOverflow: false } }));
      const later = (['compat-device', 'compat-mock'] as const).map((other): KnownDifference => ({
        scenario: 'map-dma.flags-zero', between: ['type1', other], expect: { type1: [{ step: -1, errno: 'EOVERFLOW' }], [other]: [{ step: -1, errno: 'OK' }] },
        summary: 'later type1 checks the wrap first', explanation: 'check_add_overflow.', source, when: { type1WrapOverflow: true },
      }));
      return [...base, ...old, ...later];
    };
    const laterCatalogue = () => {
      const cat = catalogue();
      cat['map-dma.flags-zero']!.results.type1 = ran([step('VFIO_GROUP_SET_CONTAINER', 'OK'), step('VFIO_SET_IOMMU(type1v2)', 'OK'), step('VFIO_IOMMU_MAP_DMA', 'EOVERFLOW')]);
      return cat;
    };

    it("6.12's raw files (no type1 switch recorded): the entries for 6.12 explain, the later kernel's are not expected", () => {
      const a = buildAudit(loaded(viommuRaw(), mockRaw()), entries());
      expect(a.verdict.failures).to.deep.equal([]);
      expect(comparison(a, 'map-dma.flags-zero', 'compat-device').known!.when).to.deep.equal({ type1WrapOverflow: false });
      expect(a.behaviour.type1WrapOverflow).to.equal(false);
    });

    it('a kernel whose viommu guest recorded type1WrapOverflow: the later entries explain, and the mock guest (no type1 switch) does not conflict', () => {
      const cat = laterCatalogue();
      const viommu = { ...viommuRaw(cat), kernel: '7.2.13', behaviour: { type1WrapOverflow: true, type1NestingRemoved: true } };
      const mock = { ...mockRaw(cat), kernel: '7.2.13', behaviour: {} };
      const a = buildAudit(loaded(viommu, mock), entries());
      expect(a.verdict.failures).to.deep.equal([]);
      expect(comparison(a, 'map-dma.flags-zero', 'compat-mock')).to.include({ state: 'explained' });
      expect(comparison(a, 'map-dma.flags-zero', 'compat-mock').known!.when).to.deep.equal({ type1WrapOverflow: true });
      // The same results judged by 6.12's entries alone: changed, which is what an unlimited table said on 7.2.
      const only612 = buildAudit(loaded(viommu, mock), entries().filter((k) => k.when?.type1WrapOverflow !== true));
      expect(only612.verdict.failures.join('\n')).to.match(/map-dma\.flags-zero: type1 vs compat-device differ and no known difference lists it/);
    });

    it('two raw files recording different values of a switch are two kernels: a problem', () => {
      const a = buildAudit(loaded({ ...viommuRaw(), behaviour: { viommu: true } }, { ...mockRaw(), behaviour: { viommu: false } }), knownForCatalogue());
      expect(a.verdict.problems.join('\n')).to.match(/behave differently \(viommu: viommu true, mock false\)/);
    });

    it("each entry has an anchor of its own; 'when' must name a switch", () => {
      const anchors = entries().map(knownDifferenceAnchor);
      expect(new Set(anchors).size).to.equal(anchors.length);
      expect(anchors).to.include('kd-map-dma.flags-zero--type1--compat-device--type1WrapOverflow').and.include('kd-map-dma.flags-zero--type1--compat-device--no-type1WrapOverflow');
      const bad = { ...entries().at(-1)!, when: { type1Wrap: true } } as unknown as KnownDifference;
      expect(() => parseKnownDifferences(knownJson([bad]), 'x')).to.throw(KnownDifferencesError, /"when" names 'type1Wrap', which is not a KernelBehaviour or Type1Behaviour switch/);
      expect(appliesTo(entries().at(-1)!)).to.equal(false);
      expect(appliesToBaseline(entries().at(-2)!)).to.equal(false);
    });

    it("the audited kernel's citations are checked against its own tree: true there, false elsewhere, no tree a problem, an entry with none a problem", () => {
      const cat = laterCatalogue();
      // On 7.2 the entries without 'when' cite the same excerpt at other lines.
      const laterEntries = () => entries().map((k) => (k.when ? k : { ...k, source: k.source.map((s) => ({ ...s, lines: { ...s.lines, '7.2.13': '3' } })) }));
      const a = buildAudit(loaded({ ...viommuRaw(cat), kernel: '7.2.13', behaviour: { type1WrapOverflow: true } }, { ...mockRaw(cat), kernel: '7.2.13' }), laterEntries());
      const tree = mkdtempSync(join(tmpdir(), 'audit-tree-'));
      const stale = mkdtempSync(join(tmpdir(), 'audit-tree-'));
      tempDirs.push(tree, stale);
      mkdirSync(join(tree, 'drivers/vfio'), { recursive: true });
      mkdirSync(join(tree, 'drivers/iommu/iommufd'), { recursive: true });
      writeFileSync(join(tree, SRC_TREE_FILE), SRC_TEXT);
      writeFileSync(join(tree, 'drivers/iommu/iommufd/vfio_compat.c'), 'static int iommufd_vfio_map_dma(void)\n{\n\tif (map.argsz < minsz || map.flags & ~supported_flags)\n\t\treturn -EINVAL;\n}\n');
      mkdirSync(join(stale, 'drivers/vfio'), { recursive: true });
      writeFileSync(join(stale, SRC_TREE_FILE), SRC_TEXT.replace('-EOVERFLOW', '-EINVAL'));
      expect(kernelCitationProblems(a, new Map([['7.2.13', tree]]))).to.deep.equal([]);
      const wrong = kernelCitationProblems(a, new Map([['7.2.13', stale]]));
      expect(wrong).to.have.length(4);
      expect(wrong.join('\n')).to.include('map-dma.flags-zero (type1 vs compat-device, when {"type1WrapOverflow":true})').and.include('the excerpt is not in the body of vfio_dma_do_map()');
      expect(wrong.join('\n')).to.include('unmap-dma.v1-half (type1 vs compat-mock): citation not true of').and.include('drivers/iommu/iommufd/vfio_compat.c: not in the kernel tree');
      expect(kernelCitationProblems(a, new Map())).to.deep.equal(["4 known difference(s) cite kernel 7.2.13's tree, which is not in the cache: their citations are unchecked"]);
      // An entry that applies to the kernel but cites nothing of its tree: a problem, whatever the tree.
      const uncited = buildAudit(loaded({ ...viommuRaw(cat), kernel: '7.2.13', behaviour: { type1WrapOverflow: true } }, { ...mockRaw(cat), kernel: '7.2.13' }), entries());
      expect(kernelCitationProblems(uncited, new Map([['7.2.13', tree]]))).to.deep.equal([
        '2 known difference(s) explain this run\'s differences on kernel 7.2.13 but cite no source of its tree (add its lines to their citations in fixtures/audit/known-differences.json): unmap-dma.v1-half (type1 vs compat-device); unmap-dma.v1-half (type1 vs compat-mock)',
      ]);
      // 6.12's raw files: 6.12's citations, checked against 6.12's tree; the entries for 7.2 only are not expected to cite it.
      const old = buildAudit(loaded(viommuRaw(), mockRaw()), entries());
      expect(kernelCitationProblems(old, new Map())).to.deep.equal(["4 known difference(s) cite kernel 6.12.117's tree, which is not in the cache: their citations are unchecked"]);
      // audit --host: the user's kernel tree is rarely at hand; the same lines are notes, not failures.
      expect(citationOutcome(old, new Map()).failures).to.have.length(1);
      expect(citationOutcome({ ...old, host: {} as NonNullable<Audit['host']> }, new Map())).to.deep.equal({ failures: [], notes: ["4 known difference(s) cite kernel 6.12.117's tree, which is not in the cache: their citations are unchecked"] });
    });
  });

  describe('the switch from compat to native', () => {
    it('lists each scenario whose native result differs from compat-device, linked to its explanation; a scenario without a native equivalent is not compared', () => {
      const cat = catalogue();
      cat['map-dma.argsz-short']!.results.native = ran([step('VFIO_DEVICE_BIND_IOMMUFD+IOMMU_IOAS_ALLOC', 'OK'), step('VFIO_DEVICE_ATTACH_IOMMUFD_PT', 'OK'), step('IOMMU_IOAS_MAP', 'E2BIG')]);
      const source = [{ file: 'drivers/iommu/iommufd/main.c', function: 'iommufd_fops_ioctl', lines: { '6.12.117': '440' }, excerpt: 'ret = copy_struct_from_user(ucmd.cmd, op->size, ucmd.ubuffer,' }];
      const entry: KnownDifference = {
        scenario: 'map-dma.argsz-short', between: ['compat-device', 'native'], expect: { 'compat-device': [{ step: -1, errno: 'EINVAL' }], native: [{ step: -1, errno: 'E2BIG' }] },
        summary: 'native checks the tail', explanation: 'copy_struct_from_user.', source,
      };
      const a = buildAudit(loaded(viommuRaw(cat), mockRaw(cat)), [...knownForCatalogue(), entry]);
      expect(a.verdict.failures).to.deep.equal([]);
      const sw = switchSummaries(a).find((x) => x.sw.between[0] === 'compat-device' && x.sw.between[1] === 'native')!;
      expect(sw.changes.map((c) => c.row.id)).to.deep.equal(['map-dma.argsz-short']);
      // get-info, group and v1 have no native cell that ran: only map-dma.argsz-short and map-dma.flags-zero are compared.
      expect(sw.compared).to.equal(2);
      expect(a.rows.find((r) => r.id === 'group.set-container-twice')!.comparisons.find((c) => c.between[1] === 'native')!.state).to.equal('not-compared');
      const md = renderMarkdown(a);
      expect(md).to.include('### From iommufd compat to native iommufd');
      expect(md).to.include('[native checks the tail](#kd-map-dma.argsz-short--compat-device--native)');
      // The cells of scenarios declared not applicable are no tests in the guest: the summary counts them.
      expect(summaryLines(a)).to.include(`audit: not applicable (no test; each cell gives its reason): compat-mock 1 of ${a.rows.length}, native 3 of ${a.rows.length}`);
      // Unlisted, the same difference fails the audit.
      expect(buildAudit(loaded(viommuRaw(cat), mockRaw(cat)), knownForCatalogue()).verdict.failures).to.deep.equal([
        'map-dma.argsz-short: compat-device vs native differ and no known difference lists it: VFIO_IOMMU_MAP_DMA / IOMMU_IOAS_MAP errno: EINVAL vs E2BIG',
      ]);
    });
  });

  describe('raw files', () => {
    it('rejects a malformed raw file with every problem named', () => {
      const raw = viommuRaw() as unknown as { scenarios: { id: string; results: Record<string, unknown> }[] };
      raw.scenarios[0]!.id = 'Map_DMA';
      raw.scenarios[1]!.results.type1 = { status: 'ran', kernel: { steps: [{ op: 'VFIO_IOMMU_MAP_DMA', errno: 22 }] }, model: { steps: [] } };
      raw.scenarios[2]!.results['compat-mock'] = { status: 'not-applicable', reason: 'x' };
      raw.scenarios[3]!.results['compat-device'] = { status: 'not-applicable' };
      expect(() => validateRaw(raw, 'viommu.json')).to.throw(AuditInputError).that.satisfies((e: Error) => {
        expect(e.message).to.match(/scenarios\[0\] \(Map_DMA\): "id" must be kebab-case/);
        expect(e.message).to.match(/errno" must be 'OK' or an errno name \(got 22\)/);
        expect(e.message).to.match(/model: no steps/);
        expect(e.message).to.match(/'compat-mock' is not a backend of profile viommu/);
        expect(e.message).to.match(/not-applicable without a reason/);
        return true;
      });
    });

    it('turns a missing or broken raw folder into a problem of the verdict, not a crash', () => {
      const empty = mkdtempSync(join(tmpdir(), 'audit-empty-'));
      const dir = writeRunFolder([viommuRaw()]);
      mkdirSync(join(dir, 'mock'));
      writeFileSync(join(dir, 'mock', 'audit-raw.json'), '{"format": 1');
      try {
        const a = auditFromFolders({ rawDirs: [empty, dir], knownPath: writeKnown(knownForCatalogue()) });
        expect(a.verdict.ok).to.equal(false);
        expect(a.verdict.problems.join('\n')).to.match(/audit-empty-.*: no audit-raw\.json there nor in viommu\/ or mock\//);
        expect(a.verdict.problems.join('\n')).to.match(/mock\/audit-raw\.json: cannot read/);
        expect(a.backends.type1.state).to.equal('ran');
      } finally {
        rmSync(empty, { recursive: true, force: true });
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('known differences table', () => {
    const ids = new Set(Object.keys(catalogue()));
    const good = () => JSON.parse(knownJson(knownForCatalogue())) as { format: number; differences: Record<string, unknown>[] };

    it('parses the file format, including the errno shorthand and steps counted from the end', () => {
      const doc = good();
      doc.differences[0]!.expect = { type1: 'EINVAL', 'compat-device': [{ errno: 'OK' }, { step: 1, errno: 'OK' }] };
      const parsed = parseKnownDifferences(JSON.stringify(doc), 'k.json', ids);
      expect(parsed[0]!.expect).to.deep.equal({ type1: [{ step: -1, errno: 'EINVAL' }], 'compat-device': [{ step: -1, errno: 'OK' }, { step: 1, errno: 'OK' }] });
      expect(parsed).to.have.length(4);
      // between in either order means the same pair.
      doc.differences[0]!.between = ['compat-device', 'type1'];
      expect(parseKnownDifferences(JSON.stringify(doc), 'k.json', ids)[0]!.between).to.deep.equal(['type1', 'compat-device']);
    });

    it('rejects every kind of bad entry, all in one message', () => {
      const doc = good();
      doc.differences[0]!.scenario = 'map-dma.no-such-scenario';
      delete doc.differences[1]!.source;
      doc.differences[2]!.between = ['compat-device', 'compat-mock'];
      doc.differences[3]!.expect = { type1: 'einval' };
      doc.differences.push({ ...good().differences[0]!, source: [{ file: '/abs/path.c' }], colour: 'red' });
      doc.differences.push({ ...good().differences[0]! });
      let message = '';
      try {
        parseKnownDifferences(JSON.stringify(doc), 'k.json', ids);
      } catch (e) {
        expect(e).to.be.instanceOf(KnownDifferencesError);
        message = (e as Error).message;
      }
      expect(message).to.match(/^k\.json: \d+ problem\(s\):/);
      expect(message).to.include("differences[0] (map-dma.no-such-scenario): unknown scenario id 'map-dma.no-such-scenario' (not in the audit catalogue)");
      expect(message).to.include('differences[1] (map-dma.flags-zero): "source" is missing');
      expect(message).to.include('differences[2] (unmap-dma.v1-half): "between" ["compat-device","compat-mock"] is not a compared pair');
      expect(message).to.include("differences[3] (unmap-dma.v1-half): expect.type1: 'einval' is not an errno name");
      expect(message).to.include("differences[3] (unmap-dma.v1-half): \"expect\" lacks 'compat-mock'");
      expect(message).to.include("differences[4] (map-dma.flags-zero): unknown key 'colour'");
      expect(message).to.include('differences[4] (map-dma.flags-zero): source[0]: "file" must be a path inside the kernel tree');
      expect(message).to.include('differences[4] (map-dma.flags-zero): source[0]: "function" is missing');
      expect(message).to.include('differences[5] (map-dma.flags-zero): listed twice for type1 vs compat-device');
      expect(() => parseKnownDifferences('{"format": 2, "differences": {}}', 'k.json')).to.throw(KnownDifferencesError, /"format" must be 1[\s\S]*"differences" must be an array/);
      expect(() => parseKnownDifferences('[', 'k.json')).to.throw(KnownDifferencesError, /not valid JSON/);
    });
  });

  describe('reports and CLI', () => {
    let dir: string;
    let out: string;
    beforeEach(() => {
      out = mkdtempSync(join(tmpdir(), 'audit-out-'));
    });
    afterEach(() => {
      rmSync(out, { recursive: true, force: true });
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('writes audit.json with one entry a scenario, each backend\'s errno name and outputs, the model and the verdict', () => {
      const a = auditOf(catalogue());
      const files = writeAuditReports(a, out);
      const json = JSON.parse(readFileSync(files.json, 'utf8'));
      expect(json).to.deep.equal(JSON.parse(JSON.stringify(auditJson(a))));
      expect(json.scenarios.map((s: { id: string }) => s.id)).to.deep.equal(Object.keys(catalogue()));
      const unmap = json.scenarios.find((s: { id: string }) => s.id === 'unmap-dma.v1-half');
      expect(unmap.backends.type1).to.include({ status: 'ran', errno: 'OK', modelAgrees: true });
      expect(unmap.backends.type1.out).to.deep.equal({ size: '8192' });
      expect(unmap.backends.type1.model).to.deep.include({ errno: 'OK', out: { size: '8192' } });
      expect(unmap.comparisons[0]).to.deep.include({ between: ['type1', 'compat-device'], state: 'explained' });
      expect(json.scenarios.find((s: { id: string }) => s.id === 'group.set-container-twice').backends['compat-mock']).to.deep.equal({ status: 'not-applicable', reason: 'a mock domain has no VFIO group' });
      expect(json.verdict.ok).to.equal(true);
      expect(existsSync(files.markdown) && existsSync(files.html)).to.equal(true);
    });

    it('writes Markdown tables per area with differing cells marked in text and linked to their explanation', () => {
      const cat = catalogue();
      cat['map-dma.argsz-short']!.title = 'argsz | short <b>*bold*</b> `code`';
      const md = renderMarkdown(auditOf(cat, knownForCatalogue().slice(1)));
      expect(md).to.match(/^\*\*Verdict: FAIL\*\*/m);
      for (const area of ['MAP_DMA', 'GET_INFO', 'GROUP', 'UNMAP_DMA']) expect(md).to.match(new RegExp(`^## ${area.replace('_', '\\\\_')}$`, 'm'));
      expect(md).to.include('argsz \\| short &lt;b&gt;\\*bold\\*&lt;/b&gt; \\`code\\`');
      expect(md).to.include('‼ [UNEXPLAINED vs compat-device](#diff-map-dma.flags-zero--type1--compat-device)');
      expect(md).to.include('≠ [differs from compat-mock](#kd-map-dma.flags-zero--type1--compat-mock)');
      expect(md).to.include('<a id="kd-map-dma.flags-zero--type1--compat-mock"></a>');
      expect(md).to.include('<a id="diff-map-dma.flags-zero--type1--compat-device"></a>');
      // The citation of the audited kernel (6.12.117), linked to its lines in that version.
      expect(md).to.include('- [`drivers/iommu/iommufd/vfio_compat.c:173`](https://elixir.bootlin.com/linux/v6.12.117/source/drivers/iommu/iommufd/vfio_compat.c#L173), `iommufd_vfio_map_dma()` (6.12.117)');
      // Every row is a table row of its area: 5 scenarios.
      expect(md.split('\n').filter((l) => l.startsWith('| <a id="s-'))).to.have.length(5);
    });

    it('`audit --raw` renders existing raw folders (no VM), writes OUT/audit/ and exits 1 on an unexplained difference', async () => {
      dir = writeRunFolder([viommuRaw(), mockRaw()]);
      const knownAll = writeKnown(knownForCatalogue());
      const knownMissingOne = writeKnown(knownForCatalogue().slice(1));
      const quiet = silenceStdout();
      let codes: number[];
      try {
        codes = [
          await main(['audit', '--raw', join(dir, 'viommu'), '--raw', join(dir, 'mock'), '--out', out, '--known', knownAll]),
          await main(['audit', `--raw=${dir}`, '--out', out, '--known', knownMissingOne]),
          await main(['audit', '--raw', join(dir, 'viommu'), '--out', out, '--known', knownAll]),
        ];
      } finally {
        quiet.restore();
      }
      expect(codes).to.deep.equal([0, 1, 1]);
      expect(quiet.text).to.match(/audit: 5 scenarios; backends: type1 ran, compat-device ran, compat-mock ran/);
      expect(quiet.text).to.match(/audit: FAIL: map-dma\.flags-zero: type1 vs compat-device differ and no known difference lists it/);
      expect(quiet.text).to.match(/audit: FAIL: backend compat-mock missing: profile mock did not run/);
      expect(quiet.text).to.include(`reports: ${join(out, 'audit', 'audit.md')}, ${join(out, 'audit', 'audit.json')}, ${join(out, 'audit', 'audit.html')}`);
      for (const f of ['audit.md', 'audit.json', 'audit.html']) expect(existsSync(join(out, 'audit', f)), f).to.equal(true);
    });
  });
});

/** Temp folders the tests made, removed after the suite. */
const tempDirs: string[] = [];

function writeKnown(entries: KnownDifference[]): string {
  const d = mkdtempSync(join(tmpdir(), 'audit-known-'));
  tempDirs.push(d);
  const f = join(d, 'known-differences.json');
  writeFileSync(f, knownJson(entries));
  return f;
}

function silenceStdout(): { text: string; restore: () => void } {
  const original = process.stdout.write.bind(process.stdout);
  const state = {
    text: '',
    restore: () => {
      process.stdout.write = original;
    },
  };
  process.stdout.write = ((chunk: string | Uint8Array) => {
    state.text += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  return state;
}
