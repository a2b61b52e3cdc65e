// Checks merged.html as a reader sees it, in headless Chromium (through
// lib/audit/browser.ts): the verdict, a matrix row per run and a cell per run
// and suite with the right pass/fail/skip counts, failing cells marked by
// colour and by a sign, every failure linked to its article, and every
// article's report links leading to files that exist beside the page.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { probePage } from '../audit/browser.ts';
import { suiteOf, type MergedRun } from './types.ts';

export interface MergedPageProbe {
  verdict: string;
  /** The matrix's run columns, in order. */
  rows: string[];
  cells: { run: string; suite: string; pass: string; fail: string; skip: string; text: string; classes: string; background: string; visible: boolean; failureLinks: string[] }[];
  anchors: { href: string; resolves: boolean; tag: string | null; run: string | null; test: string | null; reports: string[] }[];
  external: string[];
  /** The audit pages the page links (relative paths). */
  audits: string[];
}

const PROBE = `
<script>
(function () {
  var q = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };
  var r = {};
  r.verdict = document.getElementById('verdict').textContent;
  r.rows = q('#matrix thead th.run').map(function (th) { return th.getAttribute('data-run'); });
  r.cells = q('#matrix td.cell').map(function (td) {
    var box = td.getBoundingClientRect();
    return { run: td.getAttribute('data-run'), suite: td.getAttribute('data-suite'), pass: td.getAttribute('data-pass'), fail: td.getAttribute('data-fail'), skip: td.getAttribute('data-skip'),
      text: td.textContent, classes: td.className, background: getComputedStyle(td).backgroundColor, visible: box.height > 0 && box.width > 0,
      failureLinks: q('a.failure', td).map(function (a) { return decodeURIComponent(a.getAttribute('href').slice(1)); }) };
  });
  r.anchors = q('a[href^="#"]').map(function (a) {
    var id = decodeURIComponent(a.getAttribute('href').slice(1));
    var t = document.getElementById(id);
    return { href: id, resolves: !!t, tag: t ? t.tagName : null, run: t ? t.getAttribute('data-run') : null, test: t ? t.getAttribute('data-test') : null,
      reports: t ? q('a.report', t).map(function (x) { return x.getAttribute('href'); }) : [] };
  });
  r.external = q('[src], [href]').map(function (e) { return e.getAttribute('src') || e.getAttribute('href'); }).filter(function (u) { return /^[a-z]+:/i.test(u); });
  r.audits = q('a.audit').map(function (a) { return a.getAttribute('href'); });
  var pre = document.createElement('pre');
  pre.id = 'merge-probe';
  pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
})();
</script>
`;

export function probeMergedPage(html: string, pageDir: string): MergedPageProbe {
  return probePage(html, PROBE, 'merge-probe', pageDir) as MergedPageProbe;
}

/** What is wrong with the page as Chromium showed it, measured against the runs it was rendered from. */
export function mergedPageProblems(probe: MergedPageProbe, runs: MergedRun[], htmlPath: string): string[] {
  const problems: string[] = [];
  const ok = runs.every((r) => r.ok);
  if (probe.verdict !== (ok ? 'PASSED' : 'FAILED')) problems.push(`the verdict reads '${probe.verdict}', the runs ${ok ? 'passed' : 'failed'}`);
  if (probe.external.length > 0) problems.push(`the page refers to outside resources: ${probe.external.slice(0, 5).join(', ')}`);
  const labels = runs.map((r) => r.label);
  if (JSON.stringify(probe.rows) !== JSON.stringify(labels)) problems.push(`the matrix columns are ${probe.rows.join(', ')}, the runs ${labels.join(', ')}`);
  const cellOf = new Map(probe.cells.map((c) => [`${c.run} ${c.suite}`, c]));
  const passBackgrounds = new Set(probe.cells.filter((c) => c.fail === '0' && Number(c.pass) > 0).map((c) => c.background));
  for (const run of runs) {
    const suites = new Set(run.tests.map((t) => suiteOf(t.name)));
    for (const s of suites) {
      const c = cellOf.get(`${run.label} ${s}`);
      if (!c) {
        problems.push(`${run.label} × ${s}: no cell`);
        continue;
      }
      const ts = run.tests.filter((t) => suiteOf(t.name) === s);
      const want = { pass: ts.filter((t) => t.status.kind === 'pass').length, fail: ts.filter((t) => t.status.kind === 'fail').length, skip: ts.filter((t) => t.status.kind === 'skip').length };
      if (!c.visible) problems.push(`${run.label} × ${s}: the cell is not visible`);
      if (!c.text.includes(`${want.pass} / ${want.fail} / ${want.skip}`)) problems.push(`${run.label} × ${s}: shows '${c.text}', the run has ${want.pass} / ${want.fail} / ${want.skip}`);
      if (want.fail > 0) {
        if (!c.text.includes('✗')) problems.push(`${run.label} × ${s}: failing, but without the ✗ sign (colour must not be the only sign)`);
        if (passBackgrounds.has(c.background)) problems.push(`${run.label} × ${s}: failing, but coloured like a passing cell`);
        for (const t of ts.filter((x) => x.status.kind === 'fail')) {
          const link = probe.anchors.find((a) => c.failureLinks.includes(a.href) && a.test === t.name && a.run === run.label);
          if (!link) problems.push(`${run.label} × ${s}: the failure of ${t.name} has no link to its article`);
          else if (!link.resolves || link.tag !== 'ARTICLE') problems.push(`${run.label}: the link for ${t.name} leads nowhere`);
          else if (link.reports.length === 0) problems.push(`${run.label}: the article of ${t.name} links no report`);
          else for (const rep of link.reports) if (!existsSync(join(dirname(htmlPath), rep))) problems.push(`${run.label}: the article of ${t.name} links ${rep}, which is not there`);
        }
      } else if (c.text.includes('✗')) problems.push(`${run.label} × ${s}: marked ✗ without a failure`);
    }
  }
  for (const href of probe.audits) if (!existsSync(join(dirname(htmlPath), href))) problems.push(`the audit link ${href} leads to no file`);
  const broken = probe.anchors.filter((a) => !a.resolves);
  if (broken.length > 0) problems.push(`links that lead nowhere: ${broken.slice(0, 5).map((a) => `#${a.href}`).join(', ')}`);
  return problems;
}
