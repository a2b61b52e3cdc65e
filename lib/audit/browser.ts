// Loads a page of ours (the audit's, merge's) in headless Chromium (Debian's `chromium`) and reads
// back what a reader would see: rows, cells, links, filters. A probe script is
// appended to a copy of the page (the page itself carries no test code) and
// writes its findings into a <pre> that --dump-dom prints. Chromium's profile,
// crash dumps, caches and shared-memory files all live in one temp dir,
// removed afterwards.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { comparisonLink, markedComparisons, type Audit } from './report.ts';
import { BACKEND_IDS } from './types.ts';

export const CHROMIUM = process.env.CHROMIUM ?? 'chromium';

/** Why Chromium cannot be used here, or null. */
export function chromiumMissing(): string | null {
  const r = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error || r.status !== 0) return `${CHROMIUM} is not installed (apt-get install chromium)`;
  return null;
}

export interface ProbeCell {
  scenario: string;
  backend: string;
  classes: string;
  text: string;
  background: string;
}

export interface ProbeLink {
  /** The scenario row and backend cell the link is in (null outside the matrix). */
  inScenario: string | null;
  inBackend: string | null;
  href: string;
  resolves: boolean;
  targetTag: string | null;
  targetClass: string | null;
  targetText: string;
  sourceFiles: string[];
}

export interface PageProbe {
  /** The page's own script ran to its end. */
  ready: string | null;
  rows: { id: string; visible: boolean; title: string }[];
  cells: ProbeCell[];
  links: ProbeLink[];
  /** Rows shown with "differences only" checked. */
  diffOnly: string[];
  diffOnlyCount: string;
  /** Rows shown with the first area selected, and that area. */
  firstArea: string;
  areaOnly: string[];
  afterReset: number;
  images: number;
  scripts: number;
  pwned: boolean;
  /** src/href values that are not in-page anchors, hyperlinks (<a href>) aside: what the page would fetch. */
  external: string[];
  /** Hyperlinks out of the page (followed only when clicked): the known differences' kernel source. */
  outsideLinks: string[];
  stylesheets: number;
}

// Runs in the page after the page's own script (appended at the end of <body>).
const PROBE = `
<script>
(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll('#matrix tbody tr.scenario'));
  var visibleIds = function () { return rows.filter(function (tr) { return !tr.hidden && tr.getBoundingClientRect().height > 0; }).map(function (tr) { return tr.getAttribute('data-scenario'); }); };
  var r = {};
  r.ready = document.body.getAttribute('data-ready');
  r.rows = rows.map(function (tr) { var t = tr.querySelector('.title'); return { id: tr.getAttribute('data-scenario'), visible: !tr.hidden && tr.getBoundingClientRect().height > 0, title: t ? t.textContent : '' }; });
  r.cells = Array.prototype.slice.call(document.querySelectorAll('#matrix td.cell')).map(function (td) {
    return { scenario: td.closest('tr').getAttribute('data-scenario'), backend: td.getAttribute('data-backend'), classes: td.className, text: td.textContent, background: getComputedStyle(td).backgroundColor };
  });
  r.links = Array.prototype.slice.call(document.querySelectorAll('a[href^="#"]')).map(function (a) {
    var id = decodeURIComponent(a.getAttribute('href').slice(1));
    var t = document.getElementById(id);
    var td = a.closest('td.cell');
    return {
      inScenario: td ? td.closest('tr').getAttribute('data-scenario') : null,
      inBackend: td ? td.getAttribute('data-backend') : null,
      href: id, resolves: !!t, targetTag: t ? t.tagName : null, targetClass: t ? t.className : null,
      targetText: t ? t.textContent : '',
      sourceFiles: t ? Array.prototype.slice.call(t.querySelectorAll('.source code.file')).map(function (c) { return c.textContent; }) : []
    };
  });
  var diff = document.getElementById('filter-diff');
  var area = document.getElementById('filter-area');
  diff.checked = true; diff.dispatchEvent(new Event('change'));
  r.diffOnly = visibleIds();
  r.diffOnlyCount = document.getElementById('shown-count').textContent;
  diff.checked = false; diff.dispatchEvent(new Event('change'));
  r.firstArea = area.options.length > 1 ? area.options[1].value : '';
  area.value = r.firstArea; area.dispatchEvent(new Event('change'));
  r.areaOnly = visibleIds();
  area.value = ''; area.dispatchEvent(new Event('change'));
  r.afterReset = visibleIds().length;
  r.images = document.querySelectorAll('img').length;
  r.scripts = document.querySelectorAll('script').length;
  r.pwned = window.__pwned === 1;
  r.external = Array.prototype.slice.call(document.querySelectorAll('[src], [href]')).filter(function (e) { return e.tagName !== 'A' || e.hasAttribute('src'); }).map(function (e) { return e.getAttribute('src') || e.getAttribute('href'); }).filter(function (u) { return u.charAt(0) !== '#'; });
  r.outsideLinks = Array.prototype.slice.call(document.querySelectorAll('a[href]')).map(function (e) { return e.getAttribute('href'); }).filter(function (u) { return u.charAt(0) !== '#'; });
  r.stylesheets = document.querySelectorAll('link[rel=stylesheet]').length;
  var pre = document.createElement('pre');
  pre.id = 'audit-probe';
  pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
})();
</script>
`;

function decodeText(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&nbsp;/g, '\u00a0').replace(/&amp;/g, '&');
}

/** Loads the page (its HTML text) in headless Chromium and returns what the probe found. */
export function probeAuditPage(html: string): PageProbe {
  return probePage(html, PROBE, 'audit-probe') as PageProbe;
}

/**
 * Loads an HTML page in headless Chromium with `probe` (a <script> element's text, run after the page's own
 * scripts) appended to a copy of it; the probe writes JSON into <pre id="PRE_ID">, which --dump-dom
 * prints. Returns that JSON. Any page of ours is checked this way (the audit's, merge's matrix).
 */
export function probePage(html: string, probe: string, preId: string, baseDir?: string): unknown {
  const work = mkdtempSync(join(tmpdir(), 'page-chromium-'));
  try {
    for (const d of ['profile', 'crash', 'home', 'tmp']) mkdirSync(join(work, d));
    // In baseDir when given, so the page's relative links resolve to the files beside it.
    const page = join(baseDir ?? work, `.probe-${process.pid}.html`);
    if (!/<\/body>\s*<\/html>\s*$/.test(html)) throw new Error('the page does not end with </body></html>');
    writeFileSync(page, html.replace(/<\/body>\s*<\/html>\s*$/, `${probe}</body>\n</html>\n`));
    try {
      const run = spawnSync(
        CHROMIUM,
        [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-dev-shm-usage',
          '--no-first-run',
          '--no-default-browser-check',
          '--disable-extensions',
          '--disable-background-networking',
          `--user-data-dir=${join(work, 'profile')}`,
          `--crash-dumps-dir=${join(work, 'crash')}`,
          '--window-size=1400,1000',
          '--dump-dom',
          `file://${page}`,
        ],
        {
          encoding: 'utf8',
          timeout: 90_000,
          maxBuffer: 256 << 20,
          env: { ...process.env, HOME: join(work, 'home'), XDG_CONFIG_HOME: join(work, 'home'), XDG_CACHE_HOME: join(work, 'home'), TMPDIR: join(work, 'tmp') },
        },
      );
      if (run.error) throw run.error;
      const m = new RegExp(`<pre id="${preId}">([\\s\\S]*?)</pre>`).exec(run.stdout);
      if (!m) throw new Error(`${CHROMIUM} printed no probe result (exit ${run.status}):\n${run.stderr.slice(-2000)}`);
      return JSON.parse(decodeText(m[1]!));
    } finally {
      if (baseDir) rmSync(page, { force: true });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * What is wrong with the loaded page, measured against the audit it was rendered from: a scenario without
 * a visible row, a differing cell not marked (or a marked one that does not differ), a marker missing from
 * the text, a link that leads nowhere or a difference that does not lead to its explanation, broken
 * filters, anything fetched from outside, a link out of the page to anything but kernel source.
 */
/** The only links out of the page: a citation's lines in its kernel's version of the file (known-differences.ts kernelCitations). */
const KERNEL_SOURCE_LINK = /^https:\/\/elixir\.bootlin\.com\/linux\/v[0-9][0-9a-z.-]*\/source\/[A-Za-z0-9_./-]+#L[0-9]+$/;

export function pageProblems(probe: PageProbe, audit: Audit): string[] {
  const problems: string[] = [];
  if (probe.ready !== 'true') problems.push("the page's script did not run to its end");
  if (probe.external.length > 0) problems.push(`the page refers to outside resources: ${probe.external.slice(0, 5).join(', ')}`);
  const notSource = probe.outsideLinks.filter((u) => !KERNEL_SOURCE_LINK.test(u));
  if (notSource.length > 0) problems.push(`the page links out of itself elsewhere than to kernel source: ${notSource.slice(0, 5).join(', ')}`);
  if (probe.stylesheets > 0) problems.push('the page links a stylesheet instead of inlining it');
  const ids = audit.rows.map((r) => r.id);
  const shown = probe.rows.map((r) => r.id);
  if (JSON.stringify(shown) !== JSON.stringify(ids)) {
    const missing = ids.filter((id) => !shown.includes(id));
    const extra = shown.filter((id) => !ids.includes(id));
    problems.push(`the rows are not the audit's scenarios in order${missing.length ? `; missing: ${missing.slice(0, 10).join(', ')}` : ''}${extra.length ? `; extra: ${extra.slice(0, 10).join(', ')}` : ''}`);
  }
  const hidden = probe.rows.filter((r) => !r.visible).map((r) => r.id);
  if (hidden.length > 0) problems.push(`scenario rows not visible on load: ${hidden.slice(0, 10).join(', ')}`);

  const cellOf = new Map(probe.cells.map((c) => [`${c.scenario} ${c.backend}`, c]));
  const plainBackground = new Set<string>();
  for (const row of audit.rows) {
    for (const b of BACKEND_IDS) {
      const c = cellOf.get(`${row.id} ${b}`);
      if (!c) {
        problems.push(`${row.id}: no ${b} cell`);
        continue;
      }
      const marked = markedComparisons(row, b);
      const classes = c.classes.split(/\s+/);
      const failing = marked.some((m) => m.state !== 'explained');
      if (marked.length === 0) {
        if (classes.includes('differs')) problems.push(`${row.id} ${b}: marked as differing, but it does not differ`);
        if (/[≠‼]/.test(c.text)) problems.push(`${row.id} ${b}: shows a difference marker, but it does not differ`);
        if (row.cells[b].status === 'ran' && !classes.includes('model-mismatch')) plainBackground.add(c.background);
        continue;
      }
      if (!classes.includes('differs')) problems.push(`${row.id} ${b}: differs but is not marked`);
      if (!c.text.includes(failing ? '‼' : '≠')) problems.push(`${row.id} ${b}: the ${failing ? '‼' : '≠'} marker is missing (colour must not be the only sign)`);
      for (const m of marked) {
        const other = m.between[0] === b ? m.between[1] : m.between[0];
        const anchor = comparisonLink(m);
        const link = probe.links.find((l) => l.inScenario === row.id && l.inBackend === b && l.href === anchor);
        if (!link) problems.push(`${row.id} ${b}: the difference with ${other} has no link to #${anchor}`);
        else if (!link.resolves || link.targetTag !== 'ARTICLE' || !link.targetText.includes(row.id)) problems.push(`${row.id} ${b}: #${anchor} does not lead to an explanation of ${row.id}`);
        else if (m.state === 'explained' && link.sourceFiles.length === 0) problems.push(`${row.id} ${b}: the explanation of the difference with ${other} cites no kernel source`);
      }
    }
  }
  for (const c of probe.cells) {
    if (c.classes.split(/\s+/).includes('differs') && plainBackground.has(c.background)) {
      problems.push(`${c.scenario} ${c.backend}: a differing cell has the same background as a plain one`);
      break;
    }
  }
  const broken = probe.links.filter((l) => !l.resolves);
  if (broken.length > 0) problems.push(`links that lead nowhere: ${broken.slice(0, 10).map((l) => `#${l.href}`).join(', ')}`);

  const differing = audit.rows.filter((r) => r.comparisons.some((c) => c.points.length > 0 || c.state === 'stale')).map((r) => r.id);
  if (JSON.stringify(probe.diffOnly) !== JSON.stringify(differing)) problems.push(`"differences only" shows ${probe.diffOnly.length} rows, the audit has ${differing.length} scenarios with a difference`);
  const inArea = audit.rows.filter((r) => r.area === probe.firstArea).map((r) => r.id);
  if (probe.firstArea === '' || JSON.stringify(probe.areaOnly) !== JSON.stringify(inArea)) problems.push(`the area filter (${probe.firstArea || 'none'}) shows ${probe.areaOnly.length} rows, the area has ${inArea.length}`);
  if (probe.afterReset !== ids.length) problems.push(`after clearing the filters ${probe.afterReset} of ${ids.length} rows show`);
  if (probe.images > 0 || probe.pwned) problems.push('text from the audit data was interpreted as markup');
  return problems;
}
