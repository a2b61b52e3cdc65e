// The published audit: docs/audit/<kernel>/ holds each kernel's reports
// (audit.md, audit.json, audit.html) of the last passing run on that kernel,
// and docs/audit/audit.md puts the kernels side by side (which run produced
// each kernel's part and when, what changes when you switch per kernel, the
// matrix scenario x kernel x backend), so a VMM author reads the answer without
// booting anything. `audit --publish` adds or replaces one kernel's part. `npm test` compares its own run with it and fails where
// they differ, so the published report cannot go stale: a change in the
// kernel's answers, the model's predictions, the scenarios or the known
// differences shows up as a failure until the report is published again
// (`iommufd-conformance audit --raw OUT/vm --publish`).
//
// The comparison is of what the report says, not of its bytes: when it was
// generated and where the raw files were read from are provenance, shown in
// the report (which run produced each cell, and when) but not compared.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-root.ts';
import type { AuditFiles } from './write.ts';

export const PUBLISHED_AUDIT_DIR = join(PACKAGE_ROOT, 'docs', 'audit');

/** The parts of audit.json that the comparison reads (format 1, lib/audit/report.ts auditJson). */
interface AuditJsonFile {
  format: number;
  generated: string;
  profiles: Record<string, { state: string; kernel?: string; source?: string }>;
  backends: Record<string, { state?: string; reason?: string } & Record<string, unknown>>;
  scenarios: Array<{ id: string } & Record<string, unknown>>;
  knownDifferences: Array<{ anchor: string } & Record<string, unknown>>;
  verdict: { ok: boolean } & Record<string, unknown>;
}

export function readAuditJson(path: string): AuditJsonFile {
  const j = JSON.parse(readFileSync(path, 'utf8')) as AuditJsonFile;
  if (j.format !== 1 || !Array.isArray(j.scenarios) || !Array.isArray(j.knownDifferences)) {
    throw new Error(`${path}: not an audit.json of format 1`);
  }
  return j;
}

/** The first place two JSON values differ, as a path and the two values; undefined when equal. */
export function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (Object.is(a, b)) return undefined;
  const show = (v: unknown) => (v === undefined ? '(absent)' : JSON.stringify(v).slice(0, 120));
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) {
    return `${path || '(value)'}: ${show(a)} -> ${show(b)}`;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  for (const key of [...new Set([...Object.keys(ao), ...Object.keys(bo)])].sort()) {
    const d = firstDifference(ao[key], bo[key], path ? `${path}.${key}` : key);
    if (d) return d;
  }
  return undefined;
}

function kernelsOf(j: AuditJsonFile): string {
  return Object.entries(j.profiles)
    .map(([p, s]) => `${p} ${s.state === 'ran' ? (s.kernel ?? '?') : s.state}`)
    .join(', ');
}

export interface PublishedComparison {
  /** false when the two were not compared (different kernels, nothing published): `note` says why. */
  compared: boolean;
  note: string;
  /** One line per difference; empty when the published report says what this run says. */
  drift: string[];
}

/**
 * What differs between the published report and this run's: every scenario
 * (added, removed, or the first field that changed), every known difference,
 * the verdict. Only reports of the same kernels are compared.
 */
export function comparePublished(published: AuditJsonFile, run: AuditJsonFile): PublishedComparison {
  if (kernelsOf(published) !== kernelsOf(run)) {
    return { compared: false, note: `not compared: the published report is of ${kernelsOf(published)}, this run of ${kernelsOf(run)}`, drift: [] };
  }
  const drift: string[] = [];
  const byId = <T extends { id: string }>(xs: T[]) => new Map(xs.map((x) => [x.id, x]));
  const pub = byId(published.scenarios);
  const now = byId(run.scenarios);
  for (const [id, s] of now) {
    const p = pub.get(id);
    if (!p) drift.push(`scenario ${id}: in this run, not in the published report`);
    else {
      const d = firstDifference(p, s);
      if (d) drift.push(`scenario ${id}: ${d}`);
    }
  }
  for (const id of pub.keys()) if (!now.has(id)) drift.push(`scenario ${id}: in the published report, not in this run`);
  const pubKnown = new Map(published.knownDifferences.map((k) => [k.anchor, k]));
  const nowKnown = new Map(run.knownDifferences.map((k) => [k.anchor, k]));
  for (const [anchor, k] of nowKnown) {
    const d = firstDifference(pubKnown.get(anchor), k);
    if (d) drift.push(`known difference ${anchor}: ${pubKnown.has(anchor) ? d : 'not in the published report'}`);
  }
  for (const anchor of pubKnown.keys()) if (!nowKnown.has(anchor)) drift.push(`known difference ${anchor}: in the published report, no longer listed`);
  const dv = firstDifference(published.verdict, run.verdict, 'verdict');
  if (dv) drift.push(dv);
  return { compared: true, note: `compared with the published report of ${published.generated} (${kernelsOf(published)})`, drift };
}

/** The kernel a report is of (its profiles ran one kernel; the audit fails otherwise), or null. */
export function reportKernel(j: AuditJsonFile): string | null {
  const kernels = [...new Set(Object.values(j.profiles).flatMap((p) => (p.state === 'ran' && p.kernel ? [p.kernel] : [])))];
  return kernels.length === 1 ? kernels[0]! : null;
}

/** The kernels docs/audit/ has a part for (a folder holding audit.json), oldest first. */
export function publishedKernels(dir = PUBLISHED_AUDIT_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((d) => /^\d+\.\d+/.test(d) && existsSync(join(dir, d, 'audit.json')))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

/**
 * This run's reports against docs/audit/: the part of the same kernel. A kernel with no part is not compared
 * (npm test runs the audit on its default kernel, 6.12; another kernel's part is compared only by a run on
 * that kernel), and says so; no part at all fails.
 */
export function checkPublished(runJsonPath: string, dir = PUBLISHED_AUDIT_DIR): { lines: string[]; failures: number } {
  const how = 'if this run is right, publish it: `npx iommufd-conformance audit --raw OUT/vm --publish` (OUT: this run\'s --out) and commit docs/audit/';
  const run = readAuditJson(runJsonPath);
  const kernel = reportKernel(run);
  const parts = publishedKernels(dir);
  if (parts.length === 0) return { lines: [`published audit: FAILED: ${dir} has no kernel's part (docs/audit/<kernel>/audit.json); ${how}`], failures: 1 };
  if (kernel === null || !parts.includes(kernel)) {
    return { lines: [`published audit: not compared: docs/audit/ has parts for ${parts.join(', ')}, this run is of ${kernelsOf(run)}`], failures: 0 };
  }
  const cmp = comparePublished(readAuditJson(join(dir, kernel, 'audit.json')), run);
  if (!cmp.compared) return { lines: [`published audit: ${cmp.note}`], failures: 0 };
  const others = parts.filter((k) => k !== kernel);
  const rest = others.length > 0 ? `; the part${others.length > 1 ? 's' : ''} for ${others.join(', ')} not compared: no run of ${others.length > 1 ? 'those kernels' : 'that kernel'} here` : '';
  if (cmp.drift.length === 0) return { lines: [`published audit: ${kernel}: current (${cmp.note})${rest}`], failures: 0 };
  const shown = cmp.drift.slice(0, 10).map((d) => `published audit: STALE: ${d}`);
  if (cmp.drift.length > 10) shown.push(`published audit: ... and ${cmp.drift.length - 10} more`);
  return { lines: [...shown, `published audit: FAILED: docs/audit/${kernel}/ differs from this run in ${cmp.drift.length} place(s) (${cmp.note}); ${how}`], failures: 1 };
}

/**
 * Copies a run's three reports into docs/audit/<kernel>/ (adding or replacing that kernel's part; the
 * caller checks the verdict first), then rewrites docs/audit/audit.md, the kernels side by side.
 */
export function publishAudit(files: AuditFiles, dir = PUBLISHED_AUDIT_DIR): string[] {
  const kernel = reportKernel(readAuditJson(files.json));
  if (kernel === null) throw new Error(`${files.json}: not the report of one kernel: nothing published`);
  const part = join(dir, kernel);
  mkdirSync(part, { recursive: true });
  const written: string[] = [];
  for (const [from, name] of [[files.markdown, 'audit.md'], [files.json, 'audit.json'], [files.html, 'audit.html']] as const) {
    copyFileSync(from, join(part, name));
    written.push(join(part, name));
  }
  writeFileSync(join(dir, 'audit.md'), renderKernelsMarkdown(dir));
  writeFileSync(join(dir, 'audit.html'), renderKernelsHtml(dir));
  written.push(join(dir, 'audit.md'), join(dir, 'audit.html'));
  return written;
}

// ---------------------------------------------------------------- the kernels side by side

interface JsonComparison {
  between: [string, string];
  state: string;
  known?: { summary: string; anchor: string };
}
interface JsonScenario {
  id: string;
  area: string;
  title: string;
  backends: Record<string, { status: string; errno?: string; out?: Record<string, unknown>; modelAgrees?: boolean }>;
  comparisons: JsonComparison[];
}

const md = (t: string) => t.replace(/([\\`*_{}[\]()#+!|<>])/g, '\\$1');
const PAIRS: [string, string, string][] = [
  ['type1', 'compat-device', 'From type1 to iommufd compat (same device, same IOMMU)'],
  ['type1', 'compat-mock', "From type1 to iommufd compat, on iommufd's selftest mock domain"],
  ['compat-device', 'native', 'From iommufd compat to native iommufd (same device, same IOMMU)'],
];
const BACKENDS = ['type1', 'compat-device', 'compat-mock', 'native'];

/** docs/audit/audit.md: every published kernel's part, side by side, from the parts' audit.json. */
export function renderKernelsMarkdown(dir = PUBLISHED_AUDIT_DIR): string {
  const kernels = publishedKernels(dir);
  const parts = new Map(kernels.map((k) => [k, readAuditJson(join(dir, k, 'audit.json'))]));
  const lines: string[] = ['# iommufd VFIO audit: real type1, iommufd compat and native iommufd, per kernel', ''];
  lines.push(
    `Kernels: ${kernels.join(', ')}. Each kernel's part is the report of one passing run on that kernel (\`iommufd-conformance audit --kernel-version V --publish\`, ` +
      'which adds or replaces that part only); its full report, with every cell, the model\'s prediction and every explanation, is linked below. ' +
      '`npm test` runs the audit on its default kernel (6.12) and fails when that kernel\'s part differs from its run; another kernel\'s part is compared only by a run on that kernel (`audit --kernel-version 7.2` prints the comparison), not by `npm test`.',
    '',
    '| kernel | verdict | produced by (raw files) | when | full report |',
    '|---|---|---|---|---|',
  );
  for (const [k, j] of parts) {
    const v = j.verdict as { ok: boolean; scenarios?: number; comparisons?: Record<string, number>; modelMismatches?: unknown[] };
    const c = v.comparisons ?? {};
    const sources = Object.entries(j.profiles).map(([p, s]) => `${p}: ${s.source ? md(s.source) : s.state}`).join('<br>');
    lines.push(`| ${k} | ${v.ok ? 'PASS' : 'FAIL'}: ${v.scenarios ?? j.scenarios.length} scenarios; ${c.explained ?? 0} explained, ${c.unexplained ?? 0} unexplained, ${c.changed ?? 0} changed, ${c.stale ?? 0} stale; ${(v.modelMismatches ?? []).length} model mismatch(es) | ${sources} | ${j.generated} | [audit.md](${k}/audit.md), [audit.html](${k}/audit.html), [audit.json](${k}/audit.json) |`);
  }
  lines.push('', '## What changes when you switch, per kernel', '');
  for (const [a, b, title] of PAIRS) {
    lines.push(`### ${md(title)}`, '');
    const changed = new Map<string, Map<string, JsonComparison>>();
    for (const [k, j] of parts) {
      for (const s of j.scenarios as unknown as JsonScenario[]) {
        const cmp = s.comparisons.find((c) => c.between[0] === a && c.between[1] === b);
        if (cmp && cmp.state !== 'same' && cmp.state !== 'not-compared') {
          if (!changed.has(s.id)) changed.set(s.id, new Map());
          changed.get(s.id)!.set(k, cmp);
        }
      }
    }
    const counts = kernels.map((k) => `${k}: ${[...changed.values()].filter((m) => m.has(k)).length}`).join(', ');
    lines.push(`Scenarios whose result changes (${counts}); a blank cell: the same result on that kernel.`, '');
    lines.push(`| scenario | ${kernels.join(' | ')} |`, `|---|${kernels.map(() => '---|').join('')}`);
    for (const [id, byKernel] of changed) {
      const cells = kernels.map((k) => {
        const c = byKernel.get(k);
        if (!c) return '';
        return c.known ? `[${md(c.known.summary)}](${k}/audit.md#${c.known.anchor})` : `‼ ${c.state}`;
      });
      lines.push(`| \`${id}\` | ${cells.join(' | ')} |`);
    }
    lines.push('');
  }
  lines.push('## The matrix: scenario x kernel x backend', '', 'The errno of the step under audit; ≠ where it differs between the kernels. Outputs, steps and the model\'s predictions are in each kernel\'s report.', '');
  lines.push(`| scenario | ${kernels.flatMap((k) => BACKENDS.map((b) => `${k} ${b}`)).join(' | ')} |`, `|---|${kernels.flatMap(() => BACKENDS.map(() => '---|')).join('')}`);
  const ids = [...new Set([...parts.values()].flatMap((j) => (j.scenarios as unknown as JsonScenario[]).map((s) => s.id)))];
  for (const id of ids) {
    const cells = BACKENDS.map((b) => kernels.map((k) => {
      const s = (parts.get(k)!.scenarios as unknown as JsonScenario[]).find((x) => x.id === id);
      const c = s?.backends[b];
      return !c ? 'absent' : c.status === 'ran' ? (c.errno ?? '?') : c.status;
    }));
    const row = kernels.flatMap((_, ki) => BACKENDS.map((_b, bi) => {
      const v = cells[bi]![ki]!;
      return new Set(cells[bi]).size > 1 ? `≠ ${v}` : v;
    }));
    lines.push(`| [\`${id}\`](${kernels[kernels.length - 1]}/audit.md#s-${id}) | ${row.join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}

const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
const hid = (t: string) => t.replace(/[^A-Za-z0-9._-]/g, '_');

/** One published scenario's errno per kernel and backend, and whether the kernels differ there. */
export interface KernelsMatrixRow {
  id: string;
  area: string;
  title: string;
  /** [backend][kernel index]: the errno of the step under audit, or the cell's status. */
  cells: Record<string, string[]>;
  differs: boolean;
}

export function kernelsMatrix(dir = PUBLISHED_AUDIT_DIR): { kernels: string[]; rows: KernelsMatrixRow[] } {
  const kernels = publishedKernels(dir);
  const parts = kernels.map((k) => readAuditJson(join(dir, k, 'audit.json')).scenarios as unknown as JsonScenario[]);
  const ids = [...new Set(parts.flatMap((p) => p.map((s) => s.id)))];
  const rows = ids.map((id) => {
    const first = parts.flatMap((p) => p.filter((s) => s.id === id))[0]!;
    const cells = Object.fromEntries(
      BACKENDS.map((b) => [b, parts.map((p) => {
        const c = p.find((s) => s.id === id)?.backends[b];
        return !c ? 'absent' : c.status === 'ran' ? (c.errno ?? '?') : c.status;
      })]),
    );
    return { id, area: first.area, title: first.title, cells, differs: Object.values(cells).some((v) => new Set(v).size > 1) };
  });
  return { kernels, rows };
}

/**
 * docs/audit/audit.html: the same as audit.md on one self-contained page (nothing fetched), with filters
 * by area and "differs between kernels only"; every explanation link leads into that kernel's audit.html.
 */
export function renderKernelsHtml(dir = PUBLISHED_AUDIT_DIR): string {
  const { kernels, rows } = kernelsMatrix(dir);
  const parts = new Map(kernels.map((k) => [k, readAuditJson(join(dir, k, 'audit.json'))]));
  const out: string[] = [];
  out.push(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>iommufd VFIO audit, per kernel</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #111; }
table { border-collapse: collapse; margin: .5em 0 1.5em; } th, td { border: 1px solid #bbb; padding: .2em .4em; vertical-align: top; }
th { background: #eee; position: sticky; top: 0; }
td.differs-kernels { background: #fff1c2; border: 2px solid #b58900; }
.hidden { display: none; }
</style></head><body>
<h1>iommufd VFIO audit: real type1, iommufd compat and native iommufd, per kernel</h1>
<p>Each kernel's part is the report of one passing run on that kernel (<code>iommufd-conformance audit --kernel-version V --publish</code> adds or replaces that part only). <code>npm test</code> runs the audit on its default kernel (6.12) and fails when that kernel's part differs from its run; another kernel's part is compared only by a run on that kernel, not by <code>npm test</code>.</p>
<table id="kernels"><thead><tr><th>kernel</th><th>verdict</th><th>produced by (raw files)</th><th>when</th><th>full report</th></tr></thead><tbody>`);
  for (const [k, j] of parts) {
    const v = j.verdict as { ok: boolean; scenarios?: number; comparisons?: Record<string, number>; modelMismatches?: unknown[] };
    const c = v.comparisons ?? {};
    out.push(`<tr data-kernel="${esc(k)}"><td>${esc(k)}</td><td>${v.ok ? 'PASS' : 'FAIL'}: ${v.scenarios ?? j.scenarios.length} scenarios; ${c.explained ?? 0} explained, ${c.unexplained ?? 0} unexplained, ${c.changed ?? 0} changed, ${c.stale ?? 0} stale; ${(v.modelMismatches ?? []).length} model mismatch(es)</td><td>${Object.entries(j.profiles).map(([p, s]) => `${esc(p)}: ${esc(s.source ?? s.state)}`).join('<br>')}</td><td>${esc(j.generated)}</td><td><a href="${esc(k)}/audit.html">audit.html</a>, <a href="${esc(k)}/audit.md">audit.md</a>, <a href="${esc(k)}/audit.json">audit.json</a></td></tr>`);
  }
  out.push('</tbody></table>', '<h2>What changes when you switch, per kernel</h2>');
  for (const [a, b, title] of PAIRS) {
    out.push(`<h3>${esc(title)}</h3>`, `<table class="switch" data-between="${esc(a)}/${esc(b)}"><thead><tr><th>scenario</th>${kernels.map((k) => `<th>${esc(k)}</th>`).join('')}</tr></thead><tbody>`);
    const changed = new Map<string, Map<string, JsonComparison>>();
    for (const [k, j] of parts) {
      for (const s of j.scenarios as unknown as JsonScenario[]) {
        const cmp = s.comparisons.find((x) => x.between[0] === a && x.between[1] === b);
        if (cmp && cmp.state !== 'same' && cmp.state !== 'not-compared') {
          if (!changed.has(s.id)) changed.set(s.id, new Map());
          changed.get(s.id)!.set(k, cmp);
        }
      }
    }
    for (const [id, byKernel] of changed) {
      out.push(`<tr data-scenario="${esc(id)}"><td><code>${esc(id)}</code></td>${kernels.map((k) => {
        const c = byKernel.get(k);
        if (!c) return '<td></td>';
        return c.known ? `<td><a class="why" href="${esc(k)}/audit.html#${hid(c.known.anchor)}">${esc(c.known.summary)}</a></td>` : `<td>‼ ${esc(c.state)}</td>`;
      }).join('')}</tr>`);
    }
    out.push('</tbody></table>');
  }
  out.push(
    '<h2>The matrix: scenario x kernel x backend</h2>',
    '<p>The errno of the step under audit; ≠ and colour where it differs between the kernels. Outputs, steps and the model\'s predictions are in each kernel\'s report.</p>',
    `<div id="filters"><label>Area <select id="filter-area"><option value="">all</option>${[...new Set(rows.map((r) => r.area))].map((x) => `<option value="${esc(x)}">${esc(x)}</option>`).join('')}</select></label> <label><input type="checkbox" id="filter-differs"> differs between kernels only</label></div>`,
    `<table id="matrix"><thead><tr><th>scenario</th>${BACKENDS.flatMap((b) => kernels.map((k) => `<th>${esc(b)}<br>${esc(k)}</th>`)).join('')}</tr></thead><tbody>`,
  );
  const last = kernels[kernels.length - 1] ?? '';
  for (const r of rows) {
    out.push(
      `<tr class="scenario" data-scenario="${esc(r.id)}" data-area="${esc(r.area)}" data-differs="${r.differs ? 1 : 0}"><td><a href="${esc(last)}/audit.html#${hid(`s-${r.id}`)}"><code>${esc(r.id)}</code></a><br>${esc(r.title)}</td>${BACKENDS.flatMap((b) =>
        kernels.map((k, ki) => {
          const v = r.cells[b]![ki]!;
          const d = new Set(r.cells[b]).size > 1;
          return `<td data-backend="${esc(b)}" data-kernel="${esc(k)}"${d ? ' class="differs-kernels"' : ''}>${d ? '≠ ' : ''}${esc(v)}</td>`;
        }),
      ).join('')}</tr>`,
    );
  }
  out.push(`</tbody></table>
<script>
(function () {
  var area = document.getElementById('filter-area');
  var differs = document.getElementById('filter-differs');
  function apply() {
    var rows = document.querySelectorAll('#matrix tr.scenario');
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      var hide = (area.value && r.getAttribute('data-area') !== area.value) || (differs.checked && r.getAttribute('data-differs') !== '1');
      r.classList.toggle('hidden', !!hide);
    }
  }
  area.addEventListener('change', apply);
  differs.addEventListener('change', apply);
})();
</script>
</body>
</html>
`);
  return out.join('\n');
}

const KERNELS_PROBE = `<script>
(function () {
  var rows = document.querySelectorAll('#matrix tr.scenario');
  var visible = function () { var n = 0; for (var i = 0; i < rows.length; i++) if (rows[i].offsetParent !== null) n++; return n; };
  var res = { rows: rows.length, visible: visible(), marked: [], links: [] };
  var cells = document.querySelectorAll('#matrix td[data-kernel]');
  for (var i = 0; i < cells.length; i++) {
    var c = cells[i];
    if (c.classList.contains('differs-kernels')) res.marked.push({ scenario: c.parentNode.getAttribute('data-scenario'), backend: c.getAttribute('data-backend'), kernel: c.getAttribute('data-kernel'), text: c.textContent, background: getComputedStyle(c).backgroundColor });
  }
  var as = document.querySelectorAll('a[href]');
  for (var j = 0; j < as.length; j++) res.links.push(as[j].getAttribute('href'));
  var d = document.getElementById('filter-differs');
  d.checked = true; d.dispatchEvent(new Event('change'));
  res.visibleDiffersOnly = visible();
  var pre = document.createElement('pre'); pre.id = 'kernels-probe'; pre.textContent = JSON.stringify(res); document.body.appendChild(pre);
})();
</script>`;

/**
 * docs/audit/audit.html loaded in headless Chromium (lib/audit/browser.ts) against the parts it was made
 * from: a row per scenario, exactly the cells whose kernels differ marked (class, colour, ≠), the filter
 * leaving exactly those rows, and every link leading to a file of docs/audit/ and, with '#', to an id in it.
 */
export function kernelsPageProblems(html: string, dir: string, probe: (html: string, script: string, pre: string, baseDir: string) => unknown): string[] {
  const { rows } = kernelsMatrix(dir);
  const got = probe(html, KERNELS_PROBE, 'kernels-probe', dir) as { rows: number; visible: number; visibleDiffersOnly: number; marked: { scenario: string; backend: string; text: string; background: string }[]; links: string[] };
  const problems: string[] = [];
  if (got.rows !== rows.length || got.visible !== rows.length) problems.push(`${got.visible} of ${got.rows} scenario rows visible, ${rows.length} scenarios published`);
  const want = rows.flatMap((r) => Object.entries(r.cells).filter(([, v]) => new Set(v).size > 1).flatMap(([b, v]) => v.map(() => `${r.id} ${b}`)));
  const marked = got.marked.map((m) => `${m.scenario} ${m.backend}`);
  if (JSON.stringify(marked.sort()) !== JSON.stringify(want.sort())) problems.push(`cells marked as differing between kernels: ${marked.length}, expected ${want.length}`);
  for (const m of got.marked) if (!m.text.includes('≠') || m.background === 'rgba(0, 0, 0, 0)') problems.push(`${m.scenario} ${m.backend}: marked without ≠ or colour`);
  if (got.visibleDiffersOnly !== rows.filter((r) => r.differs).length) problems.push(`"differs between kernels only" shows ${got.visibleDiffersOnly} rows, ${rows.filter((r) => r.differs).length} differ`);
  const texts = new Map<string, string>();
  for (const href of new Set(got.links)) {
    const [file, frag] = href.split('#') as [string, string?];
    const path = join(dir, file!);
    if (!existsSync(path)) problems.push(`link ${href}: no file ${file}`);
    else if (frag) {
      if (!texts.has(path)) texts.set(path, readFileSync(path, 'utf8'));
      if (!texts.get(path)!.includes(`id="${frag}"`)) problems.push(`link ${href}: no id ${frag} in ${file}`);
    }
  }
  return problems;
}
