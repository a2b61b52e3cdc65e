// merged.html: one self-contained page (inline CSS, nothing fetched). The
// runs with their identity; the matrix, run x suite, each cell counting pass,
// fail and skip, a failing cell marked by class, colour and a "✗" readable
// without colour, and linking to each of its failures; one article per
// failure (and per run problem) with the message and links to the run's own
// report files, copied beside the page; then the parity table per kernel.
// Everything that comes from the results is escaped.
import { escapeHtml, htmlId } from '../audit/render-html.ts';
import { parityCounts, statusText } from '../parity/table.ts';
import type { KernelParity } from './json.ts';
import { runHeaderLines } from './ktap.ts';
import { suiteOf, type MergedRun, type MergedTest } from './types.ts';

/** Where `merge` copies a part's report files, relative to the page (lib/merge/index.ts). */
export function partFolder(run: MergedRun, partIndex: number): string {
  return `runs/${htmlId(run.label)}/${run.parts.length > 1 ? `shard-${partIndex + 1}` : 'run'}`;
}

/** The report files `merge` copies for each part, when the part has them. */
export const REPORT_FILES = ['results.ktap', 'results.json', 'results.xml', 'results.tap', 'console.log', 'dmesg.txt', 'run.json', 'timing.json'];

export function failureAnchor(run: MergedRun, test: MergedTest): string {
  return htmlId(`f-${run.label}-${test.name}`);
}

export function problemAnchor(run: MergedRun, i: number): string {
  return htmlId(`p-${run.label}-${i}`);
}

export function cellId(run: MergedRun, suite: string): string {
  return htmlId(`c-${run.label}-${suite}`);
}

const CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #111; }
h1 { font-size: 1.4em; } h2 { margin-top: 2em; }
.verdict { font-weight: bold; padding: .4em .8em; display: inline-block; border: 2px solid; }
.verdict.pass { color: #064; border-color: #064; } .verdict.fail { color: #c00; border-color: #c00; }
table { border-collapse: collapse; } th, td { border: 1px solid #bbb; padding: .3em .5em; vertical-align: top; text-align: left; }
thead th { background: #eee; position: sticky; top: 0; }
td.cell { font-family: ui-monospace, monospace; white-space: nowrap; }
td.cell.passed { background: #e3f6e8; } td.cell.failed { background: #ffd6d6; outline: 3px solid #c00; outline-offset: -3px; }
td.cell.skipped-only { background: #f0f0f0; } td.cell.absent { color: #999; }
td.cell a { display: block; font-size: .85em; }
.marker { font-weight: bold; margin-right: .2em; }
tr.run.failed th, th.run.failed { color: #c00; }
article { border: 2px solid #c00; padding: .5em 1em; margin: 1em 0; }
article pre { background: #f6f6f6; padding: .5em; white-space: pre-wrap; }
:target { scroll-margin-top: 3em; } article:target { box-shadow: 0 0 0 3px #36c; }
.ident { font-size: .85em; color: #333; }
`;

function suitesOf(runs: MergedRun[]): string[] {
  const all = new Set<string>();
  for (const r of runs) for (const t of r.tests) all.add(suiteOf(t.name));
  return [...all].sort();
}

function reportLinks(run: MergedRun, from: string, available: (rel: string) => boolean): string {
  const i = run.parts.findIndex((p) => p.dir === from);
  const folder = partFolder(run, Math.max(0, i));
  const links = REPORT_FILES.filter((f) => available(`${folder}/${f}`)).map((f) => `<a class="report" href="${escapeHtml(`${folder}/${f}`)}">${escapeHtml(f)}</a>`);
  return links.length > 0 ? links.join(' · ') : '<em>no report files were copied</em>';
}

/** An audit built from the merged runs (lib/merge/audit.ts), as the page links it. */
export interface AuditLink {
  kernel: string;
  /** The audit's page, relative to this one. */
  href: string;
  ok: boolean;
  summary: string;
}

export interface HtmlOptions {
  /** Whether a report file was copied to this path (relative to the page). */
  available: (relativePath: string) => boolean;
  audits?: AuditLink[];
  generatedAt?: Date;
}

export function renderMergedHtml(runs: MergedRun[], parity: KernelParity[], opts: HtmlOptions): string {
  const ok = runs.every((r) => r.ok);
  const suites = suitesOf(runs);
  const e = escapeHtml;
  const pass = runs.reduce((a, r) => a + r.counts.pass, 0);
  const fail = runs.reduce((a, r) => a + r.counts.fail, 0);
  const skip = runs.reduce((a, r) => a + r.counts.skip, 0);
  const out: string[] = [];
  out.push('<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">', '<title>iommufd-conformance: merged results</title>', `<style>${CSS}</style>`, '</head>', '<body>');
  out.push('<h1>iommufd-conformance: merged results</h1>');
  out.push(`<p><span id="verdict" class="verdict ${ok ? 'pass' : 'fail'}">${ok ? 'PASSED' : 'FAILED'}</span> ${runs.length} run(s), ${runs.filter((r) => !r.ok).length} failed; tests: ${pass} passed, ${fail} failed, ${skip} skipped${opts.generatedAt ? `; merged ${e(opts.generatedAt.toISOString())}` : ''}</p>`);

  out.push('<h2>Runs</h2>', '<table id="runs"><thead><tr><th>run</th><th>identity</th><th>parts</th><th>pass</th><th>fail</th><th>skip</th><th>run problems</th></tr></thead><tbody>');
  for (const r of runs) {
    const problems = r.problems.map((p, i) => `<a class="problem" href="#${problemAnchor(r, i)}">✗ ${e(p.split('\n')[0]!)}</a>`).join('<br>');
    out.push(
      `<tr class="run ${r.ok ? 'passed' : 'failed'}" data-run="${e(r.label)}"><th>${e(r.label)}</th><td class="ident">${runHeaderLines(r).map(e).join('<br>')}</td><td>${r.parts.length > 1 ? `${r.parts.length} shards` : 'whole run'}</td><td>${r.counts.pass}</td><td>${r.counts.fail}</td><td>${r.counts.skip}</td><td>${problems || '-'}</td></tr>`,
    );
  }
  out.push('</tbody></table>');

  // Suites down, runs across: a few runs (kernels x flavours x profiles) and many suites read best this way.
  out.push('<h2>Matrix: suite × run (pass / fail / skip)</h2>', '<table id="matrix"><thead><tr><th>suite</th>');
  for (const r of runs) out.push(`<th class="run ${r.ok ? 'passed' : 'failed'}" data-run="${e(r.label)}">${r.ok ? '' : '<span class="marker">✗</span>'}${e(r.label)}</th>`);
  out.push('</tr></thead><tbody>');
  for (const s of suites) {
    out.push(`<tr class="suite" data-suite="${e(s)}"><th>${e(s)}</th>`);
    for (const r of runs) {
      const ts = r.tests.filter((t) => suiteOf(t.name) === s);
      if (ts.length === 0) {
        out.push(`<td class="cell absent" id="${cellId(r, s)}" data-run="${e(r.label)}" data-suite="${e(s)}" data-pass="0" data-fail="0" data-skip="0">–</td>`);
        continue;
      }
      const p = ts.filter((t) => t.status.kind === 'pass').length;
      const failed = ts.filter((t) => t.status.kind === 'fail');
      const k = ts.filter((t) => t.status.kind === 'skip').length;
      const cls = failed.length > 0 ? 'failed' : p > 0 ? 'passed' : 'skipped-only';
      const links = failed.map((t) => `<a class="failure" href="#${failureAnchor(r, t)}">${e(t.name)}</a>`).join('');
      out.push(
        `<td class="cell ${cls}" id="${cellId(r, s)}" data-run="${e(r.label)}" data-suite="${e(s)}" data-pass="${p}" data-fail="${failed.length}" data-skip="${k}">${failed.length > 0 ? '<span class="marker">✗</span>' : ''}${p} / ${failed.length} / ${k}${links}</td>`,
      );
    }
    out.push('</tr>');
  }
  out.push('</tbody></table>');

  const failing = runs.filter((r) => r.counts.fail > 0 || r.problems.length > 0);
  out.push('<h2>Failures</h2>');
  if (failing.length === 0) out.push('<p id="no-failures">None.</p>');
  for (const r of failing) {
    r.problems.forEach((p, i) => {
      out.push(`<article class="problem" id="${problemAnchor(r, i)}" data-run="${e(r.label)}"><h3>${e(r.label)}: the run failed</h3><pre>${e(p)}</pre><p>Reports: ${r.parts.map((part) => reportLinks(r, part.dir, opts.available)).join(' | ')}</p></article>`);
    });
    for (const t of r.tests.filter((x) => x.status.kind === 'fail')) {
      const message = t.status.kind === 'fail' ? t.status.message : '';
      out.push(
        `<article class="failure" id="${failureAnchor(r, t)}" data-run="${e(r.label)}" data-test="${e(t.name)}"><h3>${e(r.label)}: <code>${e(t.name)}</code></h3><pre>${e(message || '(no message)')}</pre><p>Report: ${reportLinks(r, t.from, opts.available)}</p></article>`,
      );
    }
  }

  if (opts.audits && opts.audits.length > 0) {
    out.push('<h2>Audit: type1 against iommufd compat, per kernel</h2>', '<ul id="audits">');
    for (const a of opts.audits) out.push(`<li class="audit ${a.ok ? 'passed' : 'failed'}">${a.ok ? '' : '<span class="marker">✗</span>'}<a class="audit" href="${e(a.href)}">${e(a.kernel)}</a>: ${e(a.summary)}</li>`);
    out.push('</ul>');
  }

  out.push('<h2>Parity with the kernel selftests, per kernel</h2>');
  if (parity.length === 0) out.push('<p id="no-parity">No mock-profile run to compare (the selftest mirror runs in the mock profile).</p>');
  for (const p of parity) {
    const c = parityCounts(p.table);
    out.push(
      `<section class="parity" data-kernel="${e(p.kernel)}"><h3>${e(p.kernel)} (${p.runs.map(e).join(', ')})</h3><p>${c.cases} kernel cases, ${c.mapped} mirrored; ${c.pass} pass, ${c.skip} skip, ${c.fail} fail, ${c.notRun} not run${c.extra ? `; ${c.extra} of ours unknown to the kernel` : ''}</p>`,
      '<details><summary>cases</summary><table><thead><tr><th>kernel case</th><th>our test</th><th>status</th></tr></thead><tbody>',
      ...p.table.rows.map((row) => `<tr><td>${e(`${row.kernelFile}: ${row.kernel}`)}</td><td>${row.ours ? e(row.ours) : '<strong>MISSING</strong>'}</td><td>${e(statusText(row.status))}</td></tr>`),
      '</tbody></table></details></section>',
    );
  }
  out.push('</body>', '</html>', '');
  return out.join('\n');
}
