// The kernel's own selftests beside ours, case by case: each case of the
// kernel's iommu and VFIO selftests (from the KTAP its binaries printed in
// the guest), the test of ours that mirrors it (lib/parity: same KTAP name)
// and its status in the same boot. A disagreement is a case that exactly one
// side passes; it fails the run unless fixtures/kselftest/explained.json
// explains it for the running kernel (and an explanation that no longer
// applies to the kernel it names is stale and fails too).
import { existsSync, readFileSync } from 'node:fs';
import type { CaseStatus } from '../parity/table.ts';
import type { KselftestCase } from './ktap.ts';
import type { WitnessRow } from './audit-witness.ts';

export interface Explanation {
  /** The kernel case's KTAP name. */
  case: string;
  /** The kernel series it applies to ("6.12", "7.2"): matched against the tree's version. */
  kernel: string;
  kernelStatus: KselftestCase['status'];
  oursStatus: CaseStatus['kind'];
  reason: string;
}

export interface SideRow {
  program: string;
  kernelCase: KselftestCase;
  /** Our suite file that mirrors the case, or null. */
  ours: string | null;
  oursStatus: CaseStatus | null;
  disagreement: boolean;
  explanation?: Explanation;
}

export interface SideBySide {
  kernelVersion: string;
  rows: SideRow[];
  /** Programs that did not deliver every case (crashed, killed, not built), with why. */
  incomplete: string[];
  /** Suites the tree does not have, said rather than failed. */
  notInTree: string[];
  stale: Explanation[];
  witness: WitnessRow[];
}

export const EXPLAINED_FILE = 'fixtures/kselftest/explained.json';

export function loadExplanations(path: string): Explanation[] {
  if (!existsSync(path)) return [];
  const list = JSON.parse(readFileSync(path, 'utf8')) as { explained: Explanation[] };
  for (const e of list.explained) {
    for (const k of ['case', 'kernel', 'kernelStatus', 'oursStatus', 'reason'] as const) {
      if (typeof e[k] !== 'string' || e[k] === '') throw new Error(`${path}: an entry lacks ${k}: ${JSON.stringify(e)}`);
    }
  }
  return list.explained;
}

export function seriesMatches(series: string, version: string): boolean {
  return version === series || version.startsWith(`${series}.`);
}

export function sideBySideRows(
  program: string,
  cases: KselftestCase[],
  ours: Map<string, string>,
  oursStatuses: Map<string, CaseStatus>,
  explanations: Explanation[],
  kernelVersion: string,
): SideRow[] {
  return cases.map((kernelCase) => {
    const file = ours.get(kernelCase.name) ?? null;
    const oursStatus = file ? (oursStatuses.get(kernelCase.name) ?? { kind: 'not-run' as const }) : null;
    const disagreement = oursStatus !== null && (kernelCase.status === 'pass') !== (oursStatus.kind === 'pass');
    const explanation = disagreement
      ? explanations.find((e) => e.case === kernelCase.name && seriesMatches(e.kernel, kernelVersion) && e.kernelStatus === kernelCase.status && e.oursStatus === oursStatus!.kind)
      : undefined;
    return { program, kernelCase, ours: file, oursStatus, disagreement, ...(explanation ? { explanation } : {}) };
  });
}

/** Explanations for this kernel whose case ran and that explained nothing: what they explain no longer shows. */
export function staleExplanations(rows: SideRow[], explanations: Explanation[], kernelVersion: string): Explanation[] {
  const used = new Set(rows.map((r) => r.explanation).filter(Boolean));
  const ranCases = new Set(rows.map((r) => r.kernelCase.name));
  return explanations.filter((e) => seriesMatches(e.kernel, kernelVersion) && !used.has(e) && ranCases.has(e.case));
}

export interface SideCounts {
  cases: number;
  mirrored: number;
  agree: number;
  explained: number;
  unexplained: number;
  kernel: Record<KselftestCase['status'], number>;
}

export function sideCounts(t: SideBySide): SideCounts {
  const kernel = { pass: 0, fail: 0, skip: 0, 'not-run': 0 };
  for (const r of t.rows) kernel[r.kernelCase.status] += 1;
  return {
    cases: t.rows.length,
    mirrored: t.rows.filter((r) => r.ours).length,
    agree: t.rows.filter((r) => r.ours && !r.disagreement).length,
    explained: t.rows.filter((r) => r.disagreement && r.explanation).length,
    unexplained: t.rows.filter((r) => r.disagreement && !r.explanation).length,
    kernel,
  };
}

/** Whether the run holds: no unexplained disagreement, no stale explanation, every program complete, the witness agrees. */
export function sideBySideProblems(t: SideBySide): string[] {
  const c = sideCounts(t);
  return [
    ...(c.unexplained ? [`${c.unexplained} case(s) one side passes and the other does not, unexplained`] : []),
    ...t.stale.map((e) => `stale explanation in ${EXPLAINED_FILE}: ${e.case} (${e.kernel}: kernel ${e.kernelStatus}, ours ${e.oursStatus}) no longer shows`),
    ...t.incomplete,
    ...t.witness.filter((w) => w.verdict === 'DISAGREE').map((w) => `audit witness: ${w.entry.vfioCase} ${w.vfioStatus} but the audit (${w.entry.backend}) saw ${w.audit.join(', ')}`),
  ];
}

function statusOf(s: CaseStatus | null): string {
  if (!s) return '';
  switch (s.kind) {
    case 'pass': return 'pass';
    case 'fail': return 'FAIL';
    case 'skip': return `skip: ${s.reason}`;
    case 'not-run': return 'not run';
  }
}

function kernelStatusOf(c: KselftestCase): string {
  return c.status === 'skip' ? `skip: ${c.reason ?? ''}` : c.status === 'fail' ? 'FAIL' : c.status;
}

export function renderSideBySide(t: SideBySide): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const c = sideCounts(t);
  const lines = [`# The kernel's selftests beside ours (Linux ${t.kernelVersion})`, ''];
  for (const n of t.notInTree) lines.push(`- ${n}`);
  if (t.notInTree.length) lines.push('');
  lines.push('| kernel case | kernel | our test | ours | |', '|---|---|---|---|---|');
  for (const r of t.rows) {
    const mark = !r.ours ? 'no mirror' : r.disagreement ? (r.explanation ? 'explained' : '**DISAGREE**') : r.kernelCase.status === 'pass' ? 'agree' : 'agree (neither passes)';
    lines.push(`| ${r.program}: ${r.kernelCase.name} | ${esc(kernelStatusOf(r.kernelCase))} | ${r.ours ?? ''} | ${esc(statusOf(r.oursStatus))} | ${mark} |`);
  }
  const disagreements = t.rows.filter((r) => r.disagreement);
  if (disagreements.length) {
    lines.push('', '## Disagreements (one side passes, the other does not)');
    for (const r of disagreements) {
      lines.push(
        '',
        `### ${r.kernelCase.name}: kernel ${r.kernelCase.status}, ours ${r.oursStatus!.kind}${r.explanation ? ' (explained)' : ' (UNEXPLAINED)'}`,
        ...(r.explanation ? ['', `Explanation: ${r.explanation.reason}`] : []),
        '',
        'Kernel selftest output:',
        '```',
        ...(r.kernelCase.output.length ? r.kernelCase.output : ['(nothing)']),
        '```',
        '',
        'Ours:',
        '```',
        r.oursStatus!.kind === 'fail' ? r.oursStatus!.message || '(no message)' : statusOf(r.oursStatus),
        '```',
      );
    }
  }
  if (t.witness.length) {
    lines.push('', '## The VFIO selftests as a witness for the audit', '', '| VFIO case | status | audit backend | audit saw | verdict |', '|---|---|---|---|---|');
    for (const w of t.witness) lines.push(`| ${w.entry.vfioCase} | ${w.vfioStatus} | ${w.entry.backend} | ${esc(w.audit.join('; '))} | ${w.verdict}${w.note ? `: ${esc(w.note)}` : ''} |`);
  }
  if (t.stale.length) lines.push('', ...t.stale.map((e) => `Stale explanation: ${e.case} (${e.kernel})`));
  if (t.incomplete.length) lines.push('', ...t.incomplete.map((i) => `Incomplete: ${i}`));
  const w = t.witness;
  lines.push(
    '',
    `${c.cases} kernel cases (${c.kernel.pass} pass, ${c.kernel.skip} skip, ${c.kernel.fail} fail, ${c.kernel['not-run']} not run); ${c.mirrored} mirrored by ours: ${c.agree} agree, ${c.explained} explained, ${c.unexplained} unexplained` +
      (w.length ? `; audit witness: ${w.filter((x) => x.verdict === 'agree').length} agree, ${w.filter((x) => x.verdict === 'DISAGREE').length} disagree, ${w.filter((x) => x.verdict === 'not compared').length} not compared` : ''),
  );
  return `${lines.join('\n')}\n`;
}
