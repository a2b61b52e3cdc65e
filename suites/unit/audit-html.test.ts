// The audit page in a real browser: renders a fixture audit to audit.html,
// loads it in headless Chromium (Debian's `chromium`) and checks the live
// DOM: the page's own script ran, every scenario has a visible row, exactly
// the differing cells are marked (class, colour and a marker character
// readable without colour), every in-page link resolves (each difference to
// its explanation, with the kernel source), the filters work, nothing is
// fetched and nothing from the data is interpreted as markup.
//
// lib/audit/browser.ts appends a probe script to a copy of the page and reads
// back what it found; pageProblems() is also what npm test runs on the real page.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { checkAuditPage } from '../../lib/cli/audit.ts';
import { chromiumMissing, pageProblems, probeAuditPage, type PageProbe } from '../../lib/audit/browser.ts';
import { buildAudit, validateRaw, type Audit } from '../../lib/audit/report.ts';
import { renderHtml } from '../../lib/audit/render-html.ts';
import { skipBecause } from '../support/skip.ts';
import { catalogue, knownForCatalogue, mockRaw, ran, step, viommuRaw } from './fixtures/audit-raw.fixture.ts';

/** The fixture: an explained difference on both pairs, an unexplained one, a model mismatch, a hostile title. */
function fixtureAudit(): Audit {
  const cat = catalogue();
  cat['map-dma.argsz-short']!.title = 'argsz <img src=x onerror="window.__pwned=1"> & "quotes" <script>window.__pwned=1</script>';
  cat['map-dma.argsz-short']!.results['compat-mock'] = ran(
    [step('IOMMU_VFIO_IOAS(SET)', 'OK'), step('VFIO_SET_IOMMU(type1v2)', 'OK'), step('VFIO_IOMMU_MAP_DMA', 'EINVAL')],
    [step('IOMMU_VFIO_IOAS(SET)', 'OK'), step('VFIO_SET_IOMMU(type1v2)', 'OK'), step('VFIO_IOMMU_MAP_DMA', 'OK')],
  );
  const known = knownForCatalogue().slice(1); // map-dma.flags-zero type1/compat-device is left unexplained
  known[0]!.source[0]!.excerpt = 'if (map.argsz < minsz || map.flags & ~supported_flags)\n\treturn -EINVAL; </pre><img src=y onerror="window.__pwned=1">';
  const raws = [viommuRaw(cat), mockRaw(cat)].map((raw) => ({ path: `/fixture/${raw.profile}`, raw: validateRaw(JSON.parse(JSON.stringify(raw)), raw.profile) }));
  return buildAudit(raws, known);
}

describe('audit html page in headless Chromium', function () {
  this.timeout(120_000);
  let probe: PageProbe;
  let audit: Audit;
  let html: string;

  before(function () {
    const missing = chromiumMissing();
    if (missing) {
      // CI installs it (.ci/run): missing there is a broken setup, not a reason to skip.
      if (process.env.CI === 'true') throw new Error(`audit page check cannot run in CI: ${missing}`);
      skipBecause(this, missing);
    }
    audit = fixtureAudit();
    html = renderHtml(audit);
    probe = probeAuditPage(html);
  });

  it('loads as one self-contained page whose own script ran', () => {
    expect(probe.ready).to.equal('true');
    expect(probe.external).to.deep.equal([]);
    expect(probe.stylesheets).to.equal(0);
    expect(html).to.not.match(/\bsrc=["']?(https?:|\/\/)/i);
    // The only links out: each citation's lines in its kernel's version (followed when clicked, never fetched).
    expect(probe.outsideLinks).to.not.be.empty;
    for (const u of probe.outsideLinks) expect(u).to.match(/^https:\/\/elixir\.bootlin\.com\/linux\/v6\.12\.117\/source\/drivers\/iommu\/iommufd\/vfio_compat\.c#L173$/);
    expect(html).to.not.match(/url\(\s*['"]?(https?:|\/\/)/i);
  });

  it('shows every scenario, in catalogue order', () => {
    expect(probe.rows.map((r) => r.id)).to.deep.equal(Object.keys(catalogue()));
    expect(probe.rows.every((r) => r.visible)).to.equal(true);
    expect(probe.rows.find((r) => r.id === 'map-dma.flags-zero')!.title).to.equal('MAP_DMA with neither READ nor WRITE');
  });

  it('marks exactly the differing cells, in colour and with a marker readable without colour', () => {
    // By hand from the fixture: flags-zero differs on both pairs (one listed, one not), v1-half on both (listed).
    const expected: Record<string, 'explained' | 'failing'> = {
      'map-dma.flags-zero type1': 'failing',
      'map-dma.flags-zero compat-device': 'failing',
      'map-dma.flags-zero compat-mock': 'explained',
      'unmap-dma.v1-half type1': 'explained',
      'unmap-dma.v1-half compat-device': 'explained',
      'unmap-dma.v1-half compat-mock': 'explained',
    };
    const marked = Object.fromEntries(
      probe.cells.filter((c) => c.classes.split(' ').includes('differs')).map((c) => [`${c.scenario} ${c.backend}`, c.classes.split(' ').includes('failing') ? 'failing' : 'explained']),
    );
    expect(marked).to.deep.equal(expected);
    const plain = probe.cells.find((c) => c.scenario === 'map-dma.argsz-short' && c.backend === 'type1')!;
    for (const c of probe.cells) {
      const key = `${c.scenario} ${c.backend}`;
      if (expected[key] === 'failing') expect(c.text, key).to.include('‼');
      if (expected[key] === 'explained') expect(c.text, key).to.include('≠').and.not.include('‼');
      if (!expected[key]) expect(c.text, key).to.not.match(/[≠‼]/);
      if (expected[key]) expect(c.background, key).to.not.equal(plain.background);
    }
    const failingBg = probe.cells.find((c) => c.scenario === 'map-dma.flags-zero' && c.backend === 'compat-device')!.background;
    const explainedBg = probe.cells.find((c) => c.scenario === 'unmap-dma.v1-half' && c.backend === 'compat-device')!.background;
    expect(failingBg).to.not.equal(explainedBg);
    // The model mismatch is marked on its cell, in text.
    const mm = probe.cells.find((c) => c.scenario === 'map-dma.argsz-short' && c.backend === 'compat-mock')!;
    expect(mm.classes.split(' ')).to.include('model-mismatch');
    expect(mm.text).to.include('✗model differs: step 2 VFIO_IOMMU_MAP_DMA: errno: kernel EINVAL, model OK');
  });

  it('links each difference to its explanation, with the kernel source', () => {
    for (const l of probe.links) expect(l.resolves, `#${l.href}`).to.equal(true);
    const fromCells = probe.links.filter((l) => l.inScenario !== null);
    expect(fromCells.map((l) => `${l.inScenario} ${l.inBackend} -> ${l.href}`).sort()).to.deep.equal(
      [
        'map-dma.flags-zero type1 -> diff-map-dma.flags-zero--type1--compat-device',
        'map-dma.flags-zero compat-device -> diff-map-dma.flags-zero--type1--compat-device',
        'map-dma.flags-zero type1 -> kd-map-dma.flags-zero--type1--compat-mock',
        'map-dma.flags-zero compat-mock -> kd-map-dma.flags-zero--type1--compat-mock',
        'unmap-dma.v1-half type1 -> kd-unmap-dma.v1-half--type1--compat-device',
        'unmap-dma.v1-half compat-device -> kd-unmap-dma.v1-half--type1--compat-device',
        'unmap-dma.v1-half type1 -> kd-unmap-dma.v1-half--type1--compat-mock',
        'unmap-dma.v1-half compat-mock -> kd-unmap-dma.v1-half--type1--compat-mock',
      ].sort(),
    );
    for (const l of fromCells) {
      expect(l.targetTag).to.equal('ARTICLE');
      if (l.href.startsWith('kd-')) {
        expect(l.targetClass).to.equal('explanation');
        expect(l.sourceFiles).to.deep.equal(['drivers/iommu/iommufd/vfio_compat.c']);
        expect(l.targetText).to.include('iommufd_vfio_map_dma()');
        expect(l.targetText).to.include('Status: explained');
      } else {
        expect(l.targetClass).to.match(/\bfailing\b/);
        expect(l.targetText).to.include('UNEXPLAINED');
        expect(l.targetText).to.include('does not list it');
      }
    }
    // Every listed difference has its explanation on the page, and each links back to its scenario's row.
    for (const k of audit.known) {
      const back = probe.links.find((l) => l.href === `s-${k.scenario}` && l.inScenario === null);
      expect(back, `a link back to ${k.scenario}`).to.not.equal(undefined);
      expect(back!.targetTag).to.equal('TR');
    }
  });

  it('filters by area and to differences only', () => {
    expect(probe.diffOnly).to.deep.equal(['map-dma.flags-zero', 'unmap-dma.v1-half']);
    expect(probe.diffOnlyCount).to.equal('2 of 5 scenarios shown');
    expect(probe.firstArea).to.equal('MAP_DMA');
    expect(probe.areaOnly).to.deep.equal(['map-dma.argsz-short', 'map-dma.flags-zero']);
    expect(probe.afterReset).to.equal(5);
  });

  it('escapes titles and excerpts: shown as text, never run', () => {
    expect(probe.images).to.equal(0);
    expect(probe.pwned).to.equal(false);
    // The page's script and the probe: no script from the data.
    expect(probe.scripts).to.equal(2);
    expect(probe.rows[0]!.title).to.equal('argsz <img src=x onerror="window.__pwned=1"> & "quotes" <script>window.__pwned=1</script>');
    const explanation = probe.links.find((l) => l.href === 'kd-map-dma.flags-zero--type1--compat-mock')!;
    expect(explanation.targetText).to.include('return -EINVAL; </pre><img src=y onerror="window.__pwned=1">');
  });

  it('finds nothing wrong with it, measured against the audit (what npm test checks on the real page)', () => {
    expect(pageProblems(probe, audit)).to.deep.equal([]);
  });

  it('would notice a page that hides a scenario, leaves a difference unmarked or breaks a link', () => {
    const broken = html
      .replace(/<tr class="scenario" id="s-group\.set-container-twice"[\s\S]*?<\/tr>/, '')
      .replace('<td class="cell status-ran differs explained" data-backend="compat-mock"><span class="errno">OK</span><a class="why" data-state="explained" href="#kd-map-dma.flags-zero--type1--compat-mock"><span class="marker" aria-hidden="true">≠</span>differs from type1: explained</a>', '<td class="cell status-ran" data-backend="compat-mock"><span class="errno">OK</span>')
      .replace('class="why" data-state="explained" href="#kd-unmap-dma.v1-half--type1--compat-mock"', 'class="why" data-state="explained" href="#nowhere"');
    expect(broken).to.not.equal(html);
    const problems = pageProblems(probeAuditPage(broken), audit);
    expect(problems).to.include.members([
      "the rows are not the audit's scenarios in order; missing: group.set-container-twice",
      'group.set-container-twice: no type1 cell',
      'map-dma.flags-zero compat-mock: differs but is not marked',
      'map-dma.flags-zero compat-mock: the ≠ marker is missing (colour must not be the only sign)',
      'map-dma.flags-zero compat-mock: the difference with type1 has no link to #kd-map-dma.flags-zero--type1--compat-mock',
      'unmap-dma.v1-half type1: the difference with compat-mock has no link to #kd-unmap-dma.v1-half--type1--compat-mock',
      'links that lead nowhere: #nowhere',
    ]);
  });

  it('would notice a link out of the page to anything but kernel source, and anything it would fetch', () => {
    const elsewhere = html.replace(/href="https:\/\/elixir\.bootlin\.com\/[^"]*"/, 'href="https://example.com/x"').replace('</body>', '<img src="https://example.com/p.png"></body>');
    expect(pageProblems(probeAuditPage(elsewhere), audit)).to.include.members([
      'the page links out of itself elsewhere than to kernel source: https://example.com/x',
      'the page refers to outside resources: https://example.com/p.png',
    ]);
  });

  it('says the page was not checked, and fails in CI, when Chromium gives no answer (no exception out of the command)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'audit-page-'));
    const saved = process.env.CI;
    try {
      // A page the probe refuses before Chromium runs stands for any run that gives no answer.
      const files = { markdown: join(dir, 'audit.md'), json: join(dir, 'audit.json'), html: join(dir, 'audit.html') };
      writeFileSync(files.html, '<html><body>cut short');
      process.env.CI = 'true';
      const ci = checkAuditPage(audit, files);
      expect(ci.failures).to.equal(1);
      expect(ci.lines.join('\n')).to.match(/^audit page: FAILED: not checked, Chromium gave no answer: the page does not end with/);
      delete process.env.CI;
      const local = checkAuditPage(audit, files);
      expect(local.failures).to.equal(0);
      expect(local.lines.join('\n')).to.match(/^audit page: not checked: Chromium gave no answer/);
    } finally {
      if (saved === undefined) delete process.env.CI;
      else process.env.CI = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
