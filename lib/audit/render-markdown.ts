// audit.md: the matrix as one Markdown table per area, differing cells marked
// (in text, not only in colour), then every difference with its explanation
// and kernel source, and what fails the audit.
import { appliesToKernel, kernelCitations, knownDifferenceAnchor, type KnownDifference } from './known-differences.ts';
import { areasOf, auditPlatforms, cellSummary, comparisonLink, markedComparisons, showPointValue, showValue, type Audit, type AuditRow, type Cell, type Comparison } from './report.ts';
import { BACKEND_IDS, type BackendId } from './types.ts';
import { auditKernels, switchSummaries } from './switches.ts';
import { hostMarkdown } from './render-host.ts';

/** Escapes text for a Markdown paragraph or table cell: no markup, no HTML, no cell breaks. */
export function mdText(s: string): string {
  return s
    .replace(/\r?\n/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([\\`*_[\]{}()#+!|~])/g, '\\$1');
}

/** Text in a code span: the span's fence is longer than any backtick run inside. */
export function mdCode(s: string): string {
  const flat = s.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
  const longest = Math.max(0, ...(flat.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${/^`|`$/.test(flat) ? ` ${flat} ` : flat}${fence}`;
}

function fencedBlock(s: string): string {
  const longest = Math.max(2, ...(s.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}c\n${s.replace(/\s+$/, '')}\n${fence}`;
}

export const MARKERS = {
  explained: '≠',
  unexplained: '‼',
  modelMismatch: '✗',
} as const;

function cellText(row: AuditRow, b: BackendId): string {
  const c: Cell = row.cells[b];
  if (c.status !== 'ran') return `*${mdText(c.status)}*: ${mdText(c.reason)}`;
  const { errno, out } = cellSummary(c);
  const parts = [`**${mdText(errno)}**`, ...out.map((o) => mdCode(o))];
  for (const cmp of markedComparisons(row, b)) {
    const other = cmp.between[0] === b ? cmp.between[1] : cmp.between[0];
    const bad = cmp.state !== 'explained';
    parts.push(`${bad ? MARKERS.unexplained : MARKERS.explained} [${bad ? `${cmp.state.toUpperCase()} vs ${other}` : `differs from ${other}`}](#${comparisonLink(cmp)})`);
  }
  parts.push(c.modelMismatch.length > 0 ? `${MARKERS.modelMismatch} **model differs**: ${mdText(c.modelMismatch[0]!)}${c.modelMismatch.length > 1 ? ` (+${c.modelMismatch.length - 1} more)` : ''}` : c.modelUnchecked ? `model ✓ but for [bits it cannot tell](#model-unchecked)` : 'model ✓');
  return parts.join('<br>');
}

function pointsTable(cmp: Comparison): string[] {
  if (cmp.points.length === 0) return [];
  const [a, b] = cmp.between;
  return [
    `| step | field | ${a} | ${b} |`,
    '|---|---|---|---|',
    ...cmp.points.map((p) => `| ${mdCode(p.op)} | ${mdCode(p.field)} | ${mdCode(showPointValue(p, 0))} | ${mdCode(showPointValue(p, 1))} |`),
    '',
  ];
}

/** The entry's citations of the audited kernel's tree, linked to that version; or why there are none. */
function sourceLines(a: Audit, k: KnownDifference): string[] {
  const kernel = auditKernels(a)[0];
  if (kernel === undefined) return ['No kernel ran: no citation shown.'];
  const cites = kernelCitations(k, kernel);
  if (cites.length === 0) {
    return [`No citation of kernel ${mdText(kernel)}'s tree${appliesToKernel(k, a.behaviour) ? ' (a problem of this audit)' : `: the entry is for kernels where ${mdText(JSON.stringify(k.when ?? {}))}`}.`];
  }
  return cites.flatMap((s) => [
    `- [${mdCode(`${s.file}:${s.lines}`)}](${s.url}), ${mdCode(`${s.function}()`)} (${mdText(kernel)})`,
    '',
    fencedBlock(s.excerpt).replace(/^/gm, '  '),
    '',
  ]);
}

/** The top of the report, for a VMM author (lib/audit/switches.ts). */
function switchSummary(a: Audit): string[] {
  const kernels = auditKernels(a);
  const platforms = auditPlatforms(a);
  const on = [...(kernels.length > 0 ? [`kernel ${kernels.map(mdText).join(', ')}`] : []), ...(platforms.length > 0 ? [`platform: ${platforms.map(mdText).join(', ')}`] : [])];
  const lines = [`## What changes when you switch${on.length > 0 ? ` (${on.join('; ')})` : ''}`, ''];
  for (const { sw, compared, changes } of switchSummaries(a)) {
    lines.push(`### ${mdText(sw.title)}`, '', mdText(sw.note), '');
    lines.push(`${changes.length} of ${compared} compared scenarios give a different result:`, '');
    if (changes.length === 0) continue;
    lines.push(`| scenario | ${sw.between[0]} | ${sw.between[1]} | what changes |`, '|---|---|---|---|');
    for (const { row, cmp, sides } of changes) {
      const show = (xs: string[]) => [mdText(xs[0]!), ...xs.slice(1).map(mdCode)].join('<br>');
      const why = cmp.known ? `[${mdText(cmp.known.summary)}](#${knownDifferenceAnchor(cmp.known)})` : `${MARKERS.unexplained} [${mdText(cmp.state)}](#${comparisonLink(cmp)})`;
      lines.push(`| [${mdCode(row.id)}](#s-${row.id}) | ${show(sides[0])} | ${show(sides[1])} | ${why} |`);
    }
    lines.push('');
  }
  return lines;
}

/** A section of cells by scenario and mode, each with its lines (the model's mismatches, or the bits it cannot tell); none when empty. */
function cellListLines(heading: string[], entries: readonly { scenario: string; backend: BackendId; detail: string[] }[]): string[] {
  if (entries.length === 0) return [];
  const lines = [...heading, ''];
  for (const m of entries) {
    lines.push(`- ${mdCode(m.scenario)} on ${m.backend}:`);
    for (const d of m.detail) lines.push(`  - ${mdText(d)}`);
  }
  lines.push('');
  return lines;
}

export function renderMarkdown(a: Audit): string {
  const v = a.verdict;
  const c = v.comparisons;
  const lines: string[] = [];
  lines.push('# iommufd VFIO audit: real type1, iommufd compat and native iommufd', '');
  lines.push(
    `**Verdict: ${v.ok ? 'PASS' : 'FAIL'}**: ${v.scenarios} scenarios; differences ${c.explained} explained, ${c.unexplained} unexplained, ` +
      `${c.changed} changed, ${c.stale} stale; ${v.modelMismatches.length} model mismatch(es); ${v.problems.length} problem(s).`,
    '',
  );
  lines.push(`Generated ${mdText(a.generated)}.`, '');
  if (a.host) lines.push(...hostMarkdown(a.host, mdText));
  lines.push('| backend | profile | state | kernel |', '|---|---|---|---|');
  for (const b of BACKEND_IDS) {
    const s = a.backends[b];
    const pf = a.profiles[s.profile].platform;
    lines.push(`| ${b} | ${s.profile}${pf ? ` (${mdText(pf)})` : ''} | ${s.state}${s.reason ? `: ${mdText(s.reason)}` : ''} | ${mdText(a.profiles[s.profile].kernel ?? 'n/a')} |`);
  }
  lines.push(
    '',
    `Each cell is the kernel's result for the step under audit (the scenario's last ioctl): errno name, then outputs. ` +
      `${MARKERS.explained} marks a cell that differs from the other backend of a compared pair (type1 against each compat backend, compat-device against native) ` +
      `where a known difference explains it; ${MARKERS.unexplained} marks a difference that is unexplained, changed or stale; ` +
      `"model ✓" says the reference model predicted exactly what the kernel did, ${MARKERS.modelMismatch} that it did not.`,
    '',
  );

  lines.push(...switchSummary(a));

  for (const area of areasOf(a)) {
    lines.push(`## ${mdText(area)}`, '');
    lines.push(`| scenario | ${BACKEND_IDS.join(' | ')} |`, `|---|${BACKEND_IDS.map(() => '---').join('|')}|`);
    for (const row of a.rows.filter((r) => r.area === area)) {
      const notes = [
        ...(row.setup ? [`*setup: ${mdText(row.setup)}*`] : []),
        ...(row.platformDependent ? [`*platform-dependent, type1 and compat-mock not compared: ${mdText(row.platformDependent)}*`] : []),
      ];
      lines.push(`| <a id="s-${row.id}"></a>${mdCode(row.id)}<br>${mdText(row.title)}${notes.map((n) => `<br>${n}`).join('')} | ${BACKEND_IDS.map((b) => cellText(row, b)).join(' | ')} |`);
    }
    lines.push('');
  }

  const failing = a.rows.flatMap((row) => row.comparisons.filter((cmp) => ['unexplained', 'changed', 'stale'].includes(cmp.state)).map((cmp) => ({ row, cmp })));
  if (failing.length > 0) {
    lines.push('## Differences that fail the audit', '');
    for (const { row, cmp } of failing) {
      const anchor = comparisonLink(cmp);
      lines.push(`### <a id="${anchor}"></a>${mdText(cmp.state.toUpperCase())}: ${mdCode(row.id)}, ${cmp.between.join(' vs ')}`, '');
      if (cmp.state === 'unexplained') lines.push('The backends differ and fixtures/audit/known-differences.json does not list it.', '');
      if (cmp.known) lines.push(`Listed: [${mdText(cmp.known.summary)}](#${knownDifferenceAnchor(cmp.known)}).`, '');
      for (const d of cmp.detail ?? []) lines.push(`- ${mdText(d)}`);
      if (cmp.detail?.length) lines.push('');
      lines.push(...pointsTable(cmp));
    }
  }

  lines.push('## Known differences and their explanations', '');
  if (a.known.length === 0) lines.push('None listed.', '');
  for (const k of a.known) {
    const row = a.rows.find((r) => r.id === k.scenario);
    const cmp = row?.comparisons.find((x) => x.between[0] === k.between[0] && x.between[1] === k.between[1]);
    lines.push(`### <a id="${knownDifferenceAnchor(k)}"></a>${mdCode(k.scenario)}: ${k.between.join(' vs ')}`, '');
    lines.push(`**${mdText(k.summary)}**`, '');
    lines.push(`Status: ${cmp ? cmp.state : 'not in this audit'}${cmp && cmp.state !== 'explained' && cmp.detail ? ` (${mdText(cmp.detail.join('; '))})` : ''}.`, '');
    if (cmp) lines.push(...pointsTable(cmp));
    lines.push(mdText(k.explanation), '', 'Kernel source:', '', ...sourceLines(a, k), '');
  }

  lines.push(...cellListLines(['## Model mismatches (model bugs: they always fail the audit)'], v.modelMismatches));
  lines.push(...cellListLines(['<a id="model-unchecked"></a>', '', '## Checked without bits the model cannot tell'], v.modelUnchecked ?? []));
  if (v.problems.length > 0) {
    lines.push('## Problems', '');
    for (const p of v.problems) lines.push(`- ${mdText(p)}`);
    lines.push('');
  }
  return `${lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}
