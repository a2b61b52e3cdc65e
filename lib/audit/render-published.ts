// docs/audit/audit.md and audit.html: every published part (one kernel, one IOMMU platform) side by side,
// written from the parts' audit.json only. A VMM author reads first what changes when a VMM switches from
// type1 to iommufd's compat and from compat to native iommufd, per platform and kernel, each change linked
// to its explanation in that part's own report; then the matrix scenario x mode x platform x kernel (the
// page filters it); then which run produced each part, and when.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { platformLabel, platformOrder, PUBLISHED_AUDIT_DIR, publishedParts, type PublishedPart } from './published-layout.ts';
import { SWITCHES } from './switches.ts';
import { BACKEND_IDS, REFUSED_BY_PLATFORM, type BackendId } from './types.ts';

interface JsonComparison {
  between: [BackendId, BackendId];
  state: string;
  known?: { summary: string; anchor: string };
}
interface JsonCell {
  status: string;
  errno?: string;
  reason?: string;
  steps?: { op: string; errno: string }[];
}
interface JsonScenario {
  id: string;
  area: string;
  title: string;
  backends: Partial<Record<BackendId, JsonCell>>;
  comparisons: JsonComparison[];
}

const scenariosOf = (p: PublishedPart) => p.json.scenarios as unknown as JsonScenario[];
const idOf = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');
/** The scenario that takes the device on the platform: whether each backend gets it at all. */
const TAKING_THE_DEVICE = 'platform.msi-isolation';

/**
 * How a cell reads when its mode could not run on the part's kernel at all: the kernel lacks it, as the guest
 * probed at run time (BackendAvailability.skipped: no /dev/iommu on 6.1). Such a cell has no result, so it is
 * neither a difference between modes nor between parts; the reason is shown beside it.
 */
export const BLOCKED = 'blocked';

/** A cell's short value: the errno of the step under audit, or why there is none. */
export function cellValue(c: JsonCell | undefined): string {
  if (!c) return 'absent';
  if (c.status === 'ran') return c.errno ?? '?';
  if (c.status === 'not-applicable') return c.reason?.startsWith(REFUSED_BY_PLATFORM) ? 'refused' : 'n/a';
  if (c.status === 'skipped') return BLOCKED;
  return c.status;
}

/** The modes a part's kernel lacked (skipped, with the reason its guest probed), in BACKEND_IDS order. */
export function blockedModes(part: PublishedPart): { backend: BackendId; reason: string }[] {
  return BACKEND_IDS.flatMap((b) => {
    const s = part.json.backends[b];
    return s?.state === 'skipped' ? [{ backend: b, reason: s.reason ?? 'no reason recorded' }] : [];
  });
}

/** "compat-device, native: blocked (REASON)", the blocked modes grouped by reason; '' when none. */
function blockedText(blocked: { backend: BackendId; reason: string }[]): string {
  const byReason = new Map<string, BackendId[]>();
  for (const { backend, reason } of blocked) byReason.set(reason, [...(byReason.get(reason) ?? []), backend]);
  return [...byReason].map(([reason, bs]) => `${bs.join(', ')}: ${BLOCKED} (${reason})`).join('; ');
}

/** Why a switch is not available on a part (one of its two modes blocked), or null when it is. */
export function switchBlocked(part: PublishedPart, sw: (typeof SWITCHES)[number]): string | null {
  const blocked = blockedModes(part).filter((m) => sw.between.includes(m.backend));
  return blocked.length === 0 ? null : `not available: ${blockedText(blocked)}`;
}

/** A difference between two modes in one part: the comparison and where its explanation is, relative to docs/audit/. */
export interface ModeDifference {
  cmp: JsonComparison;
  /** PART/audit.md#anchor and PART/audit.html#id: the listed explanation, else the scenario's row. */
  md: string;
  html: string;
}

const differs = (c: JsonComparison) => c.state !== 'same' && c.state !== 'not-compared';

function modeDifference(part: PublishedPart, s: JsonScenario, cmp: JsonComparison): ModeDifference {
  const anchor = cmp.known && cmp.state === 'explained' ? cmp.known.anchor : `s-${s.id}`;
  return { cmp, md: `${part.path}/audit.md#${anchor}`, html: `${part.path}/audit.html#${idOf(anchor)}` };
}

/** The difference that leads into backend `b` of a scenario in a part (the switch whose second mode is b), if any. */
export function differenceInto(part: PublishedPart, s: JsonScenario, b: BackendId): ModeDifference | undefined {
  const cmp = s.comparisons.find((c) => c.between[1] === b && differs(c));
  return cmp ? modeDifference(part, s, cmp) : undefined;
}

/** The parts with each platform's kernels together (publishedParts orders by kernel first). */
const byPlatform = (parts: PublishedPart[]) => [...parts].sort((a, b) => platformOrder(a.platform, b.platform) || parts.indexOf(a) - parts.indexOf(b));

/** One scenario across every part: its cells, which differ between modes (linked) and which between parts. */
export interface PublishedRow {
  id: string;
  area: string;
  title: string;
  /** [part index][backend] */
  cells: { value: string; into?: ModeDifference; blocked?: string }[][];
  /** Backends whose value differs between the parts that have the scenario. */
  differsAcrossParts: BackendId[];
}

export interface PublishedMatrix {
  parts: PublishedPart[];
  platforms: string[];
  kernels: string[];
  rows: PublishedRow[];
}

export function publishedMatrix(dir = PUBLISHED_AUDIT_DIR): PublishedMatrix {
  // Each platform's kernels side by side: what a kernel changed is read between neighbouring columns.
  const parts = byPlatform(publishedParts(dir));
  const platforms = [...new Set(parts.map((p) => p.platform))];
  const kernels = [...new Set(parts.map((p) => p.kernel))];
  const order: { id: string; area: string; title: string }[] = [];
  const seen = new Set<string>();
  for (const p of parts) for (const s of scenariosOf(p)) if (!seen.has(s.id)) (seen.add(s.id), order.push({ id: s.id, area: s.area, title: s.title }));
  const rows = order.map(({ id, area, title }): PublishedRow => {
    const cells = parts.map((p) => {
      const s = scenariosOf(p).find((x) => x.id === id);
      return BACKEND_IDS.map((b) => {
        const into = s ? differenceInto(p, s, b) : undefined;
        const c = s?.backends[b];
        return { value: cellValue(c), ...(into ? { into } : {}), ...(c?.status === 'skipped' ? { blocked: c.reason ?? 'no reason recorded' } : {}) };
      });
    });
    // A blocked cell has no result: it differs from nothing (the page's filter skips it the same way).
    const differsAcrossParts = BACKEND_IDS.filter((_, bi) => new Set(cells.map((c) => c[bi]!.value).filter((v) => v !== BLOCKED)).size > 1);
    return { id, area, title, cells, differsAcrossParts };
  });
  return { parts, platforms, kernels, rows };
}

interface PartSummary {
  part: PublishedPart;
  verdict: string;
  /** Whether type1, compat-device and native take the device (platform.msi-isolation): OK, or the first step that failed. */
  takingTheDevice: string;
  /** Per switch: scenarios whose result changes, of those compared; `blocked`: why the switch is not available on this part. */
  switches: { changed: number; compared: number; blocked: string | null }[];
  refused: string;
  /** The modes this part's kernel lacks, with the reason probed at run time; '' when none. */
  blocked: string;
}

function summaryOf(part: PublishedPart): PartSummary {
  const v = part.json.verdict as { ok: boolean; scenarios?: number; comparisons?: Record<string, number>; modelMismatches?: unknown[]; modelUnchecked?: unknown[] };
  const c = v.comparisons ?? {};
  const verdict =
    `${v.ok ? 'PASS' : 'FAIL'}: ${v.scenarios ?? part.json.scenarios.length} scenarios; ${c.explained ?? 0} explained, ${c.unexplained ?? 0} unexplained, ${c.changed ?? 0} changed, ${c.stale ?? 0} stale; ${(v.modelMismatches ?? []).length} model mismatch(es)` +
    (v.modelUnchecked ? `; ${v.modelUnchecked.length} cell(s) checked without bits the model cannot tell` : '');
  const ss = scenariosOf(part);
  const take = ss.find((s) => s.id === TAKING_THE_DEVICE);
  const firstFailure = (c: JsonCell | undefined) => {
    const failed = c?.status === 'ran' ? c.steps?.find((st) => st.errno !== 'OK') : undefined;
    return failed ? `${failed.op} ${failed.errno}` : cellValue(c);
  };
  const blocked = blockedModes(part);
  const blockedDevice = blocked.filter((m) => m.backend !== 'compat-mock');
  const takingTheDevice = take
    ? [
        ...(['type1', 'compat-device', 'native'] as const).filter((b) => !blockedDevice.some((m) => m.backend === b)).map((b) => `${b}: ${firstFailure(take.backends[b])}`),
        ...(blockedDevice.length > 0 ? [blockedText(blockedDevice)] : []),
      ].join('; ')
    : '(no such scenario)';
  const switches = SWITCHES.map((sw) => {
    const of = (s: JsonScenario) => s.comparisons.find((c) => c.between[0] === sw.between[0] && c.between[1] === sw.between[1]);
    return { changed: ss.filter((s) => { const c = of(s); return c !== undefined && differs(c); }).length, compared: ss.filter((s) => { const c = of(s); return c !== undefined && c.state !== 'not-compared'; }).length, blocked: switchBlocked(part, sw) };
  });
  const refusedIn = BACKEND_IDS.map((b) => [b, ss.filter((s) => cellValue(s.backends[b]) === 'refused').length] as const).filter(([, n]) => n > 0);
  const refused = refusedIn.length === 0 ? 'none' : refusedIn.map(([b, n]) => `${b} ${n}`).join(', ');
  return { part, verdict, takingTheDevice, switches, refused, blocked: blockedText(blocked) };
}

/** Each switch on one platform: the scenarios whose result changes on any kernel, with each kernel's change. */
function switchChanges(parts: PublishedPart[], sw: (typeof SWITCHES)[number]): Map<string, Map<string, { s: JsonScenario; d: ModeDifference }>> {
  const changed = new Map<string, Map<string, { s: JsonScenario; d: ModeDifference }>>();
  for (const p of parts) {
    for (const s of scenariosOf(p)) {
      const cmp = s.comparisons.find((c) => c.between[0] === sw.between[0] && c.between[1] === sw.between[1]);
      if (!cmp || !differs(cmp)) continue;
      if (!changed.has(s.id)) changed.set(s.id, new Map());
      changed.get(s.id)!.set(p.kernel, { s, d: modeDifference(p, s, cmp) });
    }
  }
  return changed;
}

/** A platform's kernels on which a switch is available, and those on which it is not, with why. */
function switchAvailability(parts: PublishedPart[], sw: (typeof SWITCHES)[number]): { available: string[]; blocked: { kernel: string; why: string }[] } {
  const blocked = parts.flatMap((p) => {
    const why = switchBlocked(p, sw);
    return why ? [{ kernel: p.kernel, why }] : [];
  });
  return { available: parts.filter((p) => !blocked.some((b) => b.kernel === p.kernel)).map((p) => p.kernel), blocked };
}

/** "EINVAL -> OK" for a change: the errno of the step under audit on each side. */
const errnos = (s: JsonScenario, c: JsonComparison) => `${cellValue(s.backends[c.between[0]])} → ${cellValue(s.backends[c.between[1]])}`;
const sectionId = (platformKey: string, i: number) => `switch-${platformKey}-${i}`;

const md = (t: string) => t.replace(/([\\`*_{}[\]()#+!|<>])/g, '\\$1');

const INTRO =
  'Each part is the report of one passing run on one kernel and one IOMMU platform (`iommufd-conformance audit --kernel-version V --platform P --publish`, ' +
  'which adds or replaces that part only), in `docs/audit/KERNEL/PLATFORM/`; its full report, with every cell, the model\'s prediction and every explanation with its kernel source, is linked from here. ' +
  '`npm test` runs the audit of each platform on its kernel (6.12 by default), and 6.1\'s type1 half on the platforms of its parts, and fails when a part differs from its run, or was never published; a part of another kernel is compared only by an audit run on that kernel (`audit --kernel-version 7.2 --platform P` prints the comparison).';

/** docs/audit/audit.md: every published part, side by side, from the parts' audit.json. */
export function renderPublishedMarkdown(dir = PUBLISHED_AUDIT_DIR): string {
  const { parts, platforms, kernels, rows } = publishedMatrix(dir);
  const L: string[] = ['# iommufd VFIO audit: real type1, iommufd compat and native iommufd, per IOMMU platform and kernel', ''];
  L.push(`Platforms: ${platforms.map((p) => `${md(p)}`).join('; ')}. Kernels: ${kernels.join(', ')}.`, '', INTRO, '');
  L.push('## What changes when you switch, per platform and kernel', '');
  L.push(
    'Per part: whether each mode takes the device at all (`platform.msi-isolation`: OK, or the first step that failed: SET_IOMMU for type1, the device bind for iommufd), how many scenarios change result for each switch (of those both modes ran), ' +
      'and how many scenarios the platform refused in their setup (those audit nothing there). Each count leads to its list below.',
    '',
    `| platform | kernel | taking the device | ${SWITCHES.map((sw) => md(sw.title)).join(' | ')} | refused by the platform |`,
    `|---|---|---|${SWITCHES.map(() => '---|').join('')}---|`,
  );
  for (const p of byPlatform(parts)) {
    const s = summaryOf(p);
    L.push(`| ${md(p.platform)} | ${p.kernel} | ${s.takingTheDevice} | ${s.switches.map((x, i) => (x.blocked ? md(x.blocked) : `[${x.changed} of ${x.compared}](#${sectionId(p.key, i)})`)).join(' | ')} | ${s.refused} |`);
  }
  L.push('');
  for (const platform of platforms) {
    const ofPlatform = parts.filter((p) => p.platform === platform);
    const pk = ofPlatform[0]!.key;
    L.push(`### On ${md(platform)}`, '');
    SWITCHES.forEach((sw, i) => {
      const changed = switchChanges(ofPlatform, sw);
      L.push(`#### <a id="${sectionId(pk, i)}"></a>${md(sw.title)}`, '', md(sw.note), '');
      const { available, blocked } = switchAvailability(ofPlatform, sw);
      for (const b of blocked) L.push(`On ${b.kernel}: ${md(b.why)}.`, '');
      if (changed.size === 0) {
        if (available.length > 0) L.push(`No scenario changes result (${available.join(', ')}).`, '');
        return;
      }
      L.push(`Scenarios whose result changes (${ofPlatform.map((p) => `${p.kernel}: ${blocked.some((b) => b.kernel === p.kernel) ? 'not available' : [...changed.values()].filter((m) => m.has(p.kernel)).length}`).join(', ')}); a blank cell: the same result on that kernel, or not compared there.`, '');
      // A kernel on which the switch is not available has no column: the line above says why.
      L.push(`| scenario | ${available.join(' | ')} |`, `|---|${available.map(() => '---|').join('')}`);
      for (const [id, byKernel] of changed) {
        const cells = available.map((k) => {
          const c = byKernel.get(k);
          if (!c) return '';
          const what = c.d.cmp.known && c.d.cmp.state === 'explained' ? md(c.d.cmp.known.summary) : `‼ ${c.d.cmp.state}`;
          return `${errnos(c.s, c.d.cmp)}: [${what}](${c.d.md})`;
        });
        L.push(`| \`${id}\` | ${cells.join(' | ')} |`);
      }
      L.push('');
    });
  }
  L.push('## The parts: which run produced each, and when', '');
  L.push('| kernel | platform | verdict | produced by (raw files) | when | full report |', '|---|---|---|---|---|---|');
  for (const p of parts) {
    const s = summaryOf(p);
    const sources = Object.entries(p.json.profiles).map(([name, x]) => `${name}: ${x.source ? md(x.source) : x.state}`).join('<br>');
    L.push(`| ${p.kernel} | ${md(p.platform)} | ${s.verdict} | ${sources} | ${p.json.generated} | [audit.md](${p.path}/audit.md), [audit.html](${p.path}/audit.html), [audit.json](${p.path}/audit.json) |`);
  }
  L.push('', '## The matrix: scenario x mode x platform x kernel', '');
  L.push(
    'A column per part; in each cell the errno of the step under audit in each mode: type1 · compat-device · compat-mock · native ' +
      '(`refused`: the platform refused the device in the scenario\'s setup; `n/a`: no such scenario in that mode; `blocked`: the part\'s kernel lacks the mode, as its guest probed at run time, the reason in the first table). ' +
      '≠ (explained) or ‼ (failing) before a mode whose result differs from the mode a VMM switches from, linked to the explanation; **bold**: that mode\'s result differs between the parts. ' +
      'Outputs, steps and the model\'s predictions are in each part\'s report; the HTML page filters by area, platform, kernel and mode.',
    '',
  );
  const headers = parts.map((p) => `${md(platformLabel(p.platform))}<br>${p.kernel}`);
  L.push(`| scenario | ${headers.join(' | ')} |`, `|---|${parts.map(() => '---|').join('')}`);
  for (const r of rows) {
    const cells = parts.map((p, pi) =>
      BACKEND_IDS.map((b, bi) => {
        const c = r.cells[pi]![bi]!;
        let t = c.value;
        if (r.differsAcrossParts.includes(b)) t = `**${t}**`;
        if (c.into) t = `${c.into.cmp.state === 'explained' ? '≠' : '‼'}[${t}](${c.into.md})`;
        return t;
      }).join(' · '),
    );
    L.push(`| [\`${r.id}\`](${parts[0]!.path}/audit.md#s-${r.id}) | ${cells.join(' | ')} |`);
  }
  return `${L.join('\n')}\n`;
}

const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

/**
 * docs/audit/audit.html: the same as audit.md on one self-contained page (nothing fetched), the matrix with
 * filters by area, platform, kernel and mode and "differs between modes" / "differs between platforms or
 * kernels"; every differing cell links into its part's audit.html, at the explanation.
 */
export function renderPublishedHtml(dir = PUBLISHED_AUDIT_DIR): string {
  const { parts, platforms, kernels, rows } = publishedMatrix(dir);
  const keyOf = new Map(parts.map((p) => [p.platform, p.key]));
  const o: string[] = [];
  o.push(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>iommufd VFIO audit, per IOMMU platform and kernel</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #111; }
table { border-collapse: collapse; margin: .5em 0 1.5em; } th, td { border: 1px solid #bbb; padding: .2em .4em; vertical-align: top; }
th { background: #eee; }
#matrix thead th { position: sticky; top: 0; }
td.differs-mode { background: #fff1c2; border: 2px solid #b58900; }
td.differs-mode.failing { background: #ffd6d6; border-color: #c00; }
td.differs-parts { font-weight: bold; }
td.blocked, td.cell[data-value="${BLOCKED}"] { color: #666; font-style: italic; }
.hidden { display: none; }
#filters label { margin-right: 1em; }
</style></head><body>
<h1>iommufd VFIO audit: real type1, iommufd compat and native iommufd, per IOMMU platform and kernel</h1>
<p>Platforms: ${platforms.map(esc).join('; ')}. Kernels: ${kernels.map(esc).join(', ')}.</p>
<p>${esc(INTRO)}</p>
<h2>What changes when you switch, per platform and kernel</h2>
<p>Per part: whether each mode takes the device at all (<code>platform.msi-isolation</code>: OK, or the first step that failed), how many scenarios change result for each switch (of those both modes ran), and how many scenarios the platform refused in their setup. Each count leads to its list below.</p>
<table id="summary"><thead><tr><th>platform</th><th>kernel</th><th>taking the device</th>${SWITCHES.map((sw) => `<th>${esc(sw.title)}</th>`).join('')}<th>refused by the platform</th></tr></thead><tbody>`);
  for (const p of byPlatform(parts)) {
    const s = summaryOf(p);
    o.push(`<tr data-platform="${esc(p.key)}" data-kernel="${esc(p.kernel)}"><td>${esc(p.platform)}</td><td>${esc(p.kernel)}</td><td>${esc(s.takingTheDevice)}</td>${s.switches.map((x, i) => (x.blocked ? `<td class="blocked">${esc(x.blocked)}</td>` : `<td><a href="#${sectionId(p.key, i)}">${x.changed} of ${x.compared}</a></td>`)).join('')}<td>${esc(s.refused)}</td></tr>`);
  }
  o.push('</tbody></table>');
  for (const platform of platforms) {
    const ofPlatform = parts.filter((p) => p.platform === platform);
    const pk = keyOf.get(platform)!;
    o.push(`<h3>On ${esc(platform)}</h3>`);
    SWITCHES.forEach((sw, i) => {
      const changed = switchChanges(ofPlatform, sw);
      o.push(`<h4 id="${sectionId(pk, i)}">${esc(sw.title)}</h4>`, `<p>${esc(sw.note)}</p>`);
      const { available, blocked } = switchAvailability(ofPlatform, sw);
      for (const b of blocked) o.push(`<p class="blocked" data-kernel="${esc(b.kernel)}">On ${esc(b.kernel)}: ${esc(b.why)}.</p>`);
      if (changed.size === 0) {
        if (available.length > 0) o.push(`<p>No scenario changes result (${esc(available.join(', '))}).</p>`);
        return;
      }
      o.push(`<table class="switch" data-platform="${esc(pk)}" data-between="${esc(sw.between.join('/'))}"><thead><tr><th>scenario</th>${available.map((k) => `<th>${esc(k)}</th>`).join('')}</tr></thead><tbody>`);
      for (const [id, byKernel] of changed) {
        o.push(`<tr data-scenario="${esc(id)}"><td><code>${esc(id)}</code></td>${available.map((k) => {
          const c = byKernel.get(k);
          if (!c) return '<td></td>';
          const what = c.d.cmp.known && c.d.cmp.state === 'explained' ? esc(c.d.cmp.known.summary) : `‼ ${esc(c.d.cmp.state)}`;
          return `<td>${esc(errnos(c.s, c.d.cmp))}: <a class="why" href="${esc(c.d.html)}">${what}</a></td>`;
        }).join('')}</tr>`);
      }
      o.push('</tbody></table>');
    });
  }
  o.push('<h2>The parts: which run produced each, and when</h2>', '<table id="parts"><thead><tr><th>kernel</th><th>platform</th><th>verdict</th><th>produced by (raw files)</th><th>when</th><th>full report</th></tr></thead><tbody>');
  for (const p of parts) {
    const s = summaryOf(p);
    o.push(`<tr data-platform="${esc(p.key)}" data-kernel="${esc(p.kernel)}"><td>${esc(p.kernel)}</td><td>${esc(p.platform)}</td><td>${esc(s.verdict)}</td><td>${Object.entries(p.json.profiles).map(([n, x]) => `${esc(n)}: ${esc(x.source ?? x.state)}`).join('<br>')}</td><td>${esc(p.json.generated)}</td><td><a href="${esc(p.path)}/audit.html">audit.html</a>, <a href="${esc(p.path)}/audit.md">audit.md</a>, <a href="${esc(p.path)}/audit.json">audit.json</a></td></tr>`);
  }
  o.push(
    '</tbody></table>',
    '<h2>The matrix: scenario x mode x platform x kernel</h2>',
    '<p>The errno of the step under audit, per part and mode (<code>refused</code>: the platform refused the device in the scenario\'s setup; <code>n/a</code>: no such scenario in that mode; <code>blocked</code>: the part\'s kernel lacks the mode, as its guest probed at run time, the reason in the cell\'s title and the first table). ' +
      'Colour and ≠ (explained) or ‼ (failing): the mode\'s result differs from the mode a VMM switches from (type1 to compat, compat-device to native), linked to the explanation in that part\'s report. ' +
      'Bold: that mode\'s result differs between the parts. Outputs, steps and the model\'s predictions are in each part\'s report.</p>',
    `<div id="filters"><label>Area <select id="filter-area"><option value="">all</option>${[...new Set(rows.map((r) => r.area))].map((x) => `<option value="${esc(x)}">${esc(x)}</option>`).join('')}</select></label>` +
      `<label>Platform <select id="filter-platform"><option value="">all</option>${platforms.map((p) => `<option value="${esc(keyOf.get(p)!)}">${esc(p)}</option>`).join('')}</select></label>` +
      `<label>Kernel <select id="filter-kernel"><option value="">all</option>${kernels.map((k) => `<option value="${esc(k)}">${esc(k)}</option>`).join('')}</select></label>` +
      `<label>Mode <select id="filter-backend"><option value="">all</option>${BACKEND_IDS.map((b) => `<option value="${esc(b)}">${esc(b)}</option>`).join('')}</select></label>` +
      '<label><input type="checkbox" id="filter-differs-mode"> differs between modes only</label>' +
      '<label><input type="checkbox" id="filter-differs-parts"> differs between the platforms or kernels shown only</label> <span id="shown-count"></span></div>',
    `<table id="matrix"><thead><tr><th rowspan="2">scenario</th>${parts.map((p) => `<th class="part" colspan="${BACKEND_IDS.length}" data-platform="${esc(p.key)}" data-kernel="${esc(p.kernel)}">${esc(platformLabel(p.platform))}<br>${esc(p.kernel)}</th>`).join('')}</tr>` +
      `<tr>${parts.map((p) => BACKEND_IDS.map((b) => `<th class="mode" data-platform="${esc(p.key)}" data-kernel="${esc(p.kernel)}" data-backend="${esc(b)}">${esc(b)}</th>`).join('')).join('')}</tr></thead><tbody>`,
  );
  for (const r of rows) {
    o.push(
      `<tr class="scenario" data-scenario="${esc(r.id)}" data-area="${esc(r.area)}"><td><a href="${esc(parts[0]!.path)}/audit.html#${idOf(`s-${r.id}`)}"><code>${esc(r.id)}</code></a><br>${esc(r.title)}</td>${parts
        .map((p, pi) =>
          BACKEND_IDS.map((b, bi) => {
            const c = r.cells[pi]![bi]!;
            const classes = ['cell', ...(c.into ? ['differs-mode', ...(c.into.cmp.state === 'explained' ? [] : ['failing'])] : []), ...(r.differsAcrossParts.includes(b) ? ['differs-parts'] : [])];
            const text = c.into ? `${c.into.cmp.state === 'explained' ? '≠' : '‼'} <a class="why" href="${esc(c.into.html)}" title="${esc(c.into.cmp.known?.summary ?? c.into.cmp.state)}">${esc(c.value)}</a>` : esc(c.value);
            const title = c.blocked ? ` title="${esc(c.blocked)}"` : '';
            return `<td class="${classes.join(' ')}"${title} data-platform="${esc(p.key)}" data-kernel="${esc(p.kernel)}" data-backend="${esc(b)}" data-value="${esc(c.value)}">${text}</td>`;
          }).join(''),
        )
        .join('')}</tr>`,
    );
  }
  o.push(`</tbody></table>
<script>
(function () {
  var f = { area: document.getElementById('filter-area'), platform: document.getElementById('filter-platform'), kernel: document.getElementById('filter-kernel'), backend: document.getElementById('filter-backend') };
  var differsMode = document.getElementById('filter-differs-mode');
  var differsParts = document.getElementById('filter-differs-parts');
  var shown = function (el) {
    return (!f.platform.value || el.getAttribute('data-platform') === f.platform.value) &&
      (!f.kernel.value || el.getAttribute('data-kernel') === f.kernel.value) &&
      (!f.backend.value || !el.hasAttribute('data-backend') || el.getAttribute('data-backend') === f.backend.value);
  };
  function apply() {
    var heads = document.querySelectorAll('#matrix th.part, #matrix th.mode');
    for (var h = 0; h < heads.length; h++) {
      heads[h].classList.toggle('hidden', !shown(heads[h]));
      if (heads[h].classList.contains('part')) heads[h].colSpan = f.backend.value ? 1 : ${BACKEND_IDS.length};
    }
    var rows = document.querySelectorAll('#matrix tr.scenario');
    var n = 0;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      var cells = r.querySelectorAll('td.cell');
      var anyMode = false, values = {}, anyParts = false;
      for (var j = 0; j < cells.length; j++) {
        var c = cells[j];
        var on = shown(c);
        c.classList.toggle('hidden', !on);
        if (!on) continue;
        if (c.classList.contains('differs-mode')) anyMode = true;
        var b = c.getAttribute('data-backend');
        if (c.getAttribute('data-value') === '${BLOCKED}') continue;
        if (!(b in values)) values[b] = c.getAttribute('data-value');
        else if (values[b] !== c.getAttribute('data-value')) anyParts = true;
      }
      var hide = (f.area.value && r.getAttribute('data-area') !== f.area.value) || (differsMode.checked && !anyMode) || (differsParts.checked && !anyParts);
      r.classList.toggle('hidden', !!hide);
      if (!hide) n++;
    }
    document.getElementById('shown-count').textContent = n + ' of ' + rows.length + ' scenarios shown';
  }
  for (var k in f) f[k].addEventListener('change', apply);
  differsMode.addEventListener('change', apply);
  differsParts.addEventListener('change', apply);
  apply();
  document.body.setAttribute('data-ready', 'true');
})();
</script>
</body>
</html>
`);
  return o.join('\n');
}

const PUBLISHED_PROBE = `<script>
(function () {
  var rows = document.querySelectorAll('#matrix tr.scenario');
  var visibleRows = function () { var ids = []; for (var i = 0; i < rows.length; i++) if (rows[i].offsetParent !== null) ids.push(rows[i].getAttribute('data-scenario')); return ids; };
  var visibleCells = function () { var n = 0, all = document.querySelectorAll('#matrix td.cell'); for (var i = 0; i < all.length; i++) if (all[i].offsetParent !== null) n++; return n; };
  var set = function (id, v) { var e = document.getElementById(id); if (e.type === 'checkbox') e.checked = v; else e.value = v; e.dispatchEvent(new Event('change')); };
  var res = { ready: document.body.getAttribute('data-ready'), rows: rows.length, visible: visibleRows().length, cells: [], links: [] };
  var cells = document.querySelectorAll('#matrix td.cell');
  for (var i = 0; i < cells.length; i++) {
    var c = cells[i];
    var a = c.querySelector('a.why');
    res.cells.push({ scenario: c.parentNode.getAttribute('data-scenario'), platform: c.getAttribute('data-platform'), kernel: c.getAttribute('data-kernel'), backend: c.getAttribute('data-backend'), value: c.getAttribute('data-value'), classes: c.className, text: c.textContent, title: c.getAttribute('title'), href: a ? a.getAttribute('href') : null, background: getComputedStyle(c).backgroundColor });
  }
  var as = document.querySelectorAll('a[href]');
  for (var j = 0; j < as.length; j++) res.links.push(as[j].getAttribute('href'));
  set('filter-differs-mode', true); res.differsMode = visibleRows(); set('filter-differs-mode', false);
  set('filter-differs-parts', true); res.differsParts = visibleRows(); set('filter-differs-parts', false);
  var p = document.getElementById('filter-platform');
  res.firstPlatform = p.options.length > 1 ? p.options[1].value : '';
  set('filter-platform', res.firstPlatform); res.platformCells = visibleCells();
  set('filter-differs-parts', true); res.platformDiffersParts = visibleRows(); set('filter-differs-parts', false);
  set('filter-platform', '');
  set('filter-backend', 'native'); res.nativeCells = visibleCells(); set('filter-backend', '');
  res.afterReset = visibleRows().length;
  var pre = document.createElement('pre'); pre.id = 'published-probe'; pre.textContent = JSON.stringify(res); document.body.appendChild(pre);
})();
</script>`;

interface PublishedProbe {
  ready: string | null;
  rows: number;
  visible: number;
  cells: { scenario: string; platform: string; kernel: string; backend: string; value: string; classes: string; text: string; title: string | null; href: string | null; background: string }[];
  links: string[];
  differsMode: string[];
  differsParts: string[];
  firstPlatform: string;
  platformCells: number;
  platformDiffersParts: string[];
  nativeCells: number;
  afterReset: number;
}

/**
 * docs/audit/audit.html loaded in headless Chromium (lib/audit/browser.ts probePage) against the parts it
 * was made from: a row per scenario, every cell of every part and mode; exactly the cells whose mode differs
 * from the one switched from marked (class, colour, ≠ or ‼) and linked to that part's explanation; exactly
 * the cells that differ between parts marked; each filter showing what it says; every link leading to a file
 * of docs/audit/ and, with '#', to an id in it.
 */
export function publishedPageProblems(html: string, dir: string, probe: (html: string, script: string, pre: string, baseDir: string) => unknown): string[] {
  const { parts, rows } = publishedMatrix(dir);
  const got = probe(html, PUBLISHED_PROBE, 'published-probe', dir) as PublishedProbe;
  const problems: string[] = [];
  if (got.ready !== 'true') problems.push("the page's script did not run to its end");
  if (got.rows !== rows.length || got.visible !== rows.length) problems.push(`${got.visible} of ${got.rows} scenario rows visible, ${rows.length} scenarios published`);
  if (got.cells.length !== rows.length * parts.length * BACKEND_IDS.length) problems.push(`${got.cells.length} cells, expected ${rows.length} scenarios x ${parts.length} parts x ${BACKEND_IDS.length} modes`);
  const cellAt = new Map(got.cells.map((c) => [`${c.scenario} ${c.platform} ${c.kernel} ${c.backend}`, c]));
  let wrongMode = 0;
  let wrongParts = 0;
  for (const r of rows) {
    parts.forEach((p, pi) =>
      BACKEND_IDS.forEach((b, bi) => {
        const want = r.cells[pi]![bi]!;
        const c = cellAt.get(`${r.id} ${p.key} ${p.kernel} ${b}`);
        if (!c) return void problems.push(`${r.id} ${p.path} ${b}: no cell`);
        if (c.value !== want.value) problems.push(`${r.id} ${p.path} ${b}: shows ${c.value}, the part says ${want.value}`);
        if (c.title !== (want.blocked ?? null)) problems.push(`${r.id} ${p.path} ${b}: ${want.blocked ? `blocked, but its title is ${c.title ?? 'absent'}, not the reason ${want.blocked}` : `a title (${c.title}) on a cell that is not blocked`}`);
        const classes = c.classes.split(/\s+/);
        if (classes.includes('differs-mode') !== !!want.into) wrongMode++;
        if (want.into) {
          const marker = want.into.cmp.state === 'explained' ? '≠' : '‼';
          if (!c.text.includes(marker) || c.background === 'rgba(0, 0, 0, 0)') problems.push(`${r.id} ${p.path} ${b}: differs between modes without ${marker} or colour`);
          if (c.href !== want.into.html) problems.push(`${r.id} ${p.path} ${b}: links to ${c.href ?? 'nothing'}, not its explanation ${want.into.html}`);
        } else if (/[≠‼]/.test(c.text)) problems.push(`${r.id} ${p.path} ${b}: a difference marker on a cell that does not differ`);
        if (classes.includes('differs-parts') !== r.differsAcrossParts.includes(b)) wrongParts++;
      }),
    );
  }
  const wantMode = rows.reduce((n, r) => n + r.cells.flat().filter((c) => c.into).length, 0);
  if (wrongMode > 0) problems.push(`cells marked as differing between modes: ${got.cells.filter((c) => c.classes.split(/\s+/).includes('differs-mode')).length}, expected ${wantMode}`);
  if (wrongParts > 0) problems.push(`${wrongParts} cell(s) marked wrongly as differing (or not) between the parts`);
  const same = (a: string[], b: string[]) => JSON.stringify(a) === JSON.stringify(b);
  const modeRows = rows.filter((r) => r.cells.flat().some((c) => c.into)).map((r) => r.id);
  if (!same(got.differsMode, modeRows)) problems.push(`"differs between modes only" shows ${got.differsMode.length} rows, ${modeRows.length} differ`);
  const partRows = rows.filter((r) => r.differsAcrossParts.length > 0).map((r) => r.id);
  if (!same(got.differsParts, partRows)) problems.push(`"differs between the platforms or kernels" shows ${got.differsParts.length} rows, ${partRows.length} differ`);
  const first = parts.filter((p) => p.key === got.firstPlatform);
  if (first.length === 0 || got.platformCells !== rows.length * first.length * BACKEND_IDS.length) problems.push(`the platform filter (${got.firstPlatform || 'none'}) shows ${got.platformCells} cells, expected ${rows.length * first.length * BACKEND_IDS.length}`);
  const firstIdx = parts.flatMap((p, i) => (p.key === got.firstPlatform ? [i] : []));
  const kernelRows = rows.filter((r) => BACKEND_IDS.some((_, bi) => new Set(firstIdx.map((i) => r.cells[i]![bi]!.value).filter((v) => v !== BLOCKED)).size > 1)).map((r) => r.id);
  if (!same(got.platformDiffersParts, kernelRows)) problems.push(`on platform ${got.firstPlatform}, "differs between the platforms or kernels" shows ${got.platformDiffersParts.length} rows, ${kernelRows.length} differ between its kernels`);
  if (got.nativeCells !== rows.length * parts.length) problems.push(`the mode filter (native) shows ${got.nativeCells} cells, expected ${rows.length * parts.length}`);
  if (got.afterReset !== rows.length) problems.push(`after clearing the filters ${got.afterReset} of ${rows.length} rows show`);
  const texts = new Map<string, string>();
  for (const href of new Set(got.links)) {
    const [file, frag] = href.split('#') as [string, string?];
    if (file === '') {
      if (frag && !html.includes(`id="${frag}"`)) problems.push(`link ${href}: no id ${frag} on the page`);
      continue;
    }
    const path = join(dir, file!);
    if (!existsSync(path)) problems.push(`link ${href}: no file ${file}`);
    else if (frag) {
      if (!texts.has(path)) texts.set(path, readFileSync(path, 'utf8'));
      if (!texts.get(path)!.includes(`id="${frag}"`)) problems.push(`link ${href}: no id ${frag} in ${file}`);
    }
  }
  return problems;
}
