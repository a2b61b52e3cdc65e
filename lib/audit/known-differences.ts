// The table of known differences between real VFIO type1 and iommufd's compat
// (fixtures/audit/known-differences.json): each entry names a scenario, the two
// backends it differs on, what each backend does there, and the kernel source
// that explains it. The loader is strict: an entry that cannot be checked
// against the audit (unknown scenario, no source, an errno that is not a name,
// an unknown key) is an error, not something to skip.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-root.ts';
import type { BackendId, OutValue } from './types.ts';
import { BASELINE_SWITCHES, type KernelBehaviour, type Type1Behaviour } from '../model/kernel-behaviour.ts';

export const KNOWN_DIFFERENCES_PATH = join(PACKAGE_ROOT, 'fixtures', 'audit', 'known-differences.json');

/** The backend pairs the audit compares: real type1 against each compat backend, and compat against native on the same device. */
export const COMPARED_PAIRS: readonly (readonly [BackendId, BackendId])[] = [
  ['type1', 'compat-device'],
  ['type1', 'compat-mock'],
  ['compat-device', 'native'],
];

/**
 * One citation of kernel source: an excerpt of a function's body. A function that moved, was renamed or whose
 * body changed between kernels is cited once per version of its code, each citation naming the kernels it is
 * true of.
 */
export interface SourceRef {
  /** Path inside the kernel tree, e.g. drivers/iommu/iommufd/vfio_compat.c. */
  file: string;
  function: string;
  /**
   * The kernels whose tree this citation is true of, by release as `uname -r` reports it ('6.12.117',
   * '7.3.0-rc7'), each with the lines the excerpt spans there ('123' or '123-140'). lib/audit/source-check.ts
   * checks each against that kernel's tree; the report of a kernel shows the citations that name it.
   */
  lines: Record<string, string>;
  /** The lines that explain the difference, verbatim from the file ('...' on a line of its own elides lines). */
  excerpt: string;
}

/** A kernel release as `uname -r` gives it for the kernels the audit builds: 6.12.117, 7.2.13, 7.3.0-rc7. */
export const KERNEL_RELEASE = /^\d+\.\d+\.\d+(-rc\d+)?$/;

/** The citations of an entry that are true of kernel `kernel` (name it in their lines). */
export function citationsOf(k: Pick<KnownDifference, 'source'>, kernel: string): SourceRef[] {
  return k.source.filter((s) => s.lines[kernel] !== undefined);
}

/** What one backend is expected to report at one of its steps. */
export interface ExpectedStep {
  /** 0-based index into the backend's steps; negative counts from the end (-1: the step under audit). */
  step: number;
  errno?: string;
  /** Output fields: for a pair across two profiles, the normalised value where the step declares one. */
  out?: Record<string, OutValue>;
}

export interface KnownDifference {
  scenario: string;
  /** Canonical order: as in COMPARED_PAIRS (type1 first; compat-device before native). */
  between: [BackendId, BackendId];
  expect: Partial<Record<BackendId, ExpectedStep[]>>;
  summary: string;
  explanation: string;
  source: SourceRef[];
  /**
   * The kernels it applies to, by KernelBehaviour or Type1Behaviour switch (lib/model/kernel-behaviour.ts):
   * an entry with `when` is only expected of raw files whose probed behaviour has those values (absent:
   * every kernel). Its citations name the kernels they are true of (SourceRef.lines).
   */
  when?: Partial<Record<keyof KernelBehaviour | keyof Type1Behaviour | keyof PlatformSwitches, boolean>>;
}

// The platform facts an entry can be limited to (issue 14 item 5: known differences keyed by kernel and
// platform), as the device profile's raw file records them (AuditRaw.platform, read from /proc/interrupts
// and sysfs in the guest). Absent from `when`: any platform.
export interface PlatformSwitches {
  /** iommu_group_has_isolated_msi: interrupt remapping on. */
  msiIsolated: boolean;
  /** vfio_iommu_type1.allow_unsafe_interrupts */
  type1AllowUnsafeInterrupts: boolean;
  /** iommufd.allow_unsafe_interrupts */
  iommufdAllowUnsafeInterrupts: boolean;
  /** The IOMMU driver maps an IOVA with neither READ nor WRITE (virtio-iommu; AuditPlatform.domainMapsWithoutAccess). */
  domainMapsWithoutAccess: boolean;
  /** The device's IOMMU is AMD-Vi (AuditPlatform.driver): its own page sizes, aperture and reserved regions. */
  amdVi: boolean;
  /** The device's IOMMU is virtio-iommu (AuditPlatform.driver). */
  virtioIommu: boolean;
}

/** The platform the audit was first published on (viommu: intel-iommu with interrupt remapping, both parameters off). */
export const BASELINE_PLATFORM: Readonly<PlatformSwitches> = { msiIsolated: true, type1AllowUnsafeInterrupts: false, iommufdAllowUnsafeInterrupts: false, domainMapsWithoutAccess: false, amdVi: false, virtioIommu: false };

/** The platform switches of a raw file's platform (BASELINE_PLATFORM where it records none). */
export function platformSwitches(p: { interruptRemapping: boolean; type1AllowUnsafeInterrupts: boolean; iommufdAllowUnsafeInterrupts: boolean; domainMapsWithoutAccess?: boolean; driver?: string } | undefined): PlatformSwitches {
  if (!p) return { ...BASELINE_PLATFORM };
  return {
    msiIsolated: p.interruptRemapping,
    type1AllowUnsafeInterrupts: p.type1AllowUnsafeInterrupts,
    iommufdAllowUnsafeInterrupts: p.iommufdAllowUnsafeInterrupts,
    domainMapsWithoutAccess: p.domainMapsWithoutAccess ?? false,
    amdVi: p.driver === 'amd-iommu',
    virtioIommu: p.driver === 'virtio-iommu',
  };
}

const isPlatformKey = (key: string): key is keyof PlatformSwitches => key in BASELINE_PLATFORM;

/**
 * Whether an entry is expected of a kernel with this behaviour on this platform (6.12's and the baseline
 * platform's when the raw files name none).
 */
export function appliesTo(k: KnownDifference, behaviour: Readonly<Record<string, boolean>> = BASELINE_SWITCHES, platform: Readonly<PlatformSwitches> = BASELINE_PLATFORM): boolean {
  return Object.entries(k.when ?? {}).every(([key, value]) =>
    isPlatformKey(key) ? platform[key] === value : (behaviour[key] ?? BASELINE_SWITCHES[key as keyof typeof BASELINE_SWITCHES] ?? false) === value,
  );
}

/**
 * Whether an entry applies to a kernel with this behaviour, whatever its platform switches say: for the
 * entries of an audit's report (Audit.known), which are of the audit's platform already.
 */
export function appliesToKernel(k: KnownDifference, behaviour: Readonly<Record<string, boolean>>): boolean {
  return Object.entries(k.when ?? {}).every(([key, value]) => isPlatformKey(key) || (behaviour[key] ?? BASELINE_SWITCHES[key as keyof typeof BASELINE_SWITCHES] ?? false) === value);
}

/** Whether an entry's platform switches (only those) match the platform: a report lists only its platform's entries. */
export function appliesToPlatform(k: KnownDifference, platform: Readonly<PlatformSwitches>): boolean {
  return Object.entries(k.when ?? {}).every(([key, value]) => !isPlatformKey(key) || platform[key] === value);
}

/**
 * Whether an entry applies to 6.12 (every kernel `when` value is 6.12's): its citations are of 6.12's tree.
 * Platform switches do not change the tree.
 */
export function appliesToBaseline(k: KnownDifference): boolean {
  return Object.entries(k.when ?? {}).every(([key, value]) => isPlatformKey(key) || (BASELINE_SWITCHES[key as keyof typeof BASELINE_SWITCHES] ?? false) === value);
}

export class KnownDifferencesError extends Error {
  override name = 'KnownDifferencesError';
}

const ERRNO_NAME = /^(OK|E[A-Z0-9_]+|errno \d+)$/;
const LINES = /^\d+(-\d+)?$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isOutValue(v: unknown): v is OutValue {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

/** The HTML/Markdown anchor of an entry: stable, derived from what identifies it. */
export function knownDifferenceAnchor(k: { scenario: string; between: readonly [BackendId, BackendId]; when?: KnownDifference['when'] }): string {
  // Entries for the same scenario and pair on kernels that differ (their `when`) need anchors of their own.
  const when = Object.entries(k.when ?? {}).map(([key, value]) => `--${value ? '' : 'no-'}${key}`).join('');
  return `kd-${k.scenario}--${k.between[0]}--${k.between[1]}${when}`.replace(/[^A-Za-z0-9._-]/g, '_');
}

/**
 * Parses and validates the table. `scenarioIds` is the catalogue (the ids the raw results list); when given,
 * an entry naming another id is an error. All problems are reported at once, one a line.
 */
export function parseKnownDifferences(text: string, where: string, scenarioIds?: ReadonlySet<string>): KnownDifference[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new KnownDifferencesError(`${where}: not valid JSON: ${(e as Error).message}`);
  }
  const problems: string[] = [];
  if (!isRecord(doc)) throw new KnownDifferencesError(`${where}: the top level must be an object { "format": 1, "differences": [...] }`);
  for (const key of Object.keys(doc)) if (key !== 'format' && key !== 'differences' && key !== 'comment') problems.push(`unknown top-level key '${key}'`);
  if (doc.format !== 1) problems.push(`"format" must be 1 (got ${JSON.stringify(doc.format)})`);
  if (!Array.isArray(doc.differences)) {
    problems.push('"differences" must be an array');
    throw new KnownDifferencesError(`${where}:\n  ${problems.join('\n  ')}`);
  }
  const entries: KnownDifference[] = [];
  const seen = new Set<string>();
  doc.differences.forEach((raw: unknown, i: number) => {
    const label = `differences[${i}]${isRecord(raw) && typeof raw.scenario === 'string' ? ` (${raw.scenario})` : ''}`;
    const bad = (msg: string) => problems.push(`${label}: ${msg}`);
    if (!isRecord(raw)) return bad('must be an object');
    const allowed = ['scenario', 'between', 'expect', 'summary', 'explanation', 'source', 'when'];
    let when: KnownDifference['when'];
    if (raw.when !== undefined) {
      if (!isRecord(raw.when) || Object.keys(raw.when).length === 0) bad('"when" must be a non-empty object of KernelBehaviour, Type1Behaviour or platform switches');
      else {
        for (const [key, value] of Object.entries(raw.when)) {
          if (!(key in BASELINE_SWITCHES) && !isPlatformKey(key)) bad(`"when" names '${key}', which is not a KernelBehaviour or Type1Behaviour switch nor a platform switch (${[...Object.keys(BASELINE_SWITCHES), ...Object.keys(BASELINE_PLATFORM)].join(', ')})`);
          else if (typeof value !== 'boolean') bad(`when.${key} must be true or false`);
        }
        when = raw.when as KnownDifference['when'];
      }
    }
    for (const key of Object.keys(raw)) if (!allowed.includes(key)) bad(`unknown key '${key}' (allowed: ${allowed.join(', ')})`);

    const scenario = raw.scenario;
    if (typeof scenario !== 'string' || scenario === '') bad('"scenario" must be a scenario id');
    else if (scenarioIds && !scenarioIds.has(scenario)) bad(`unknown scenario id '${scenario}' (not in the audit catalogue)`);

    let between: [BackendId, BackendId] | undefined;
    const b = raw.between;
    if (!Array.isArray(b) || b.length !== 2) bad('"between" must be a pair of backends, e.g. ["type1", "compat-device"]');
    else {
      const pair = COMPARED_PAIRS.find(([x, y]) => (b[0] === x && b[1] === y) || (b[0] === y && b[1] === x));
      if (!pair) bad(`"between" ${JSON.stringify(b)} is not a compared pair (${COMPARED_PAIRS.map((p) => p.join('/')).join(', ')})`);
      else between = [pair[0], pair[1]];
    }

    const expect: Partial<Record<BackendId, ExpectedStep[]>> = {};
    if (!isRecord(raw.expect)) bad('"expect" must be an object with what each backend of "between" reports');
    else if (between) {
      for (const key of Object.keys(raw.expect)) if (!between.includes(key as BackendId)) bad(`"expect" names '${key}', which is not in "between"`);
      for (const backend of between) {
        const v = raw.expect[backend];
        if (v === undefined) {
          bad(`"expect" lacks '${backend}': both sides of a difference are pinned, so that a change on either shows`);
          continue;
        }
        const steps = parseExpectation(v, (msg) => bad(`expect.${backend}: ${msg}`));
        if (steps) expect[backend] = steps;
      }
    }

    for (const field of ['summary', 'explanation'] as const) {
      if (typeof raw[field] !== 'string' || (raw[field] as string).trim() === '') bad(`"${field}" is missing or empty`);
    }
    if (typeof raw.summary === 'string' && raw.summary.includes('\n')) bad('"summary" must be one line');

    const source: SourceRef[] = [];
    if (!Array.isArray(raw.source) || raw.source.length === 0) bad('"source" is missing: at least one { file, function, lines, excerpt } of the kernel source that explains the difference');
    else
      raw.source.forEach((s: unknown, j: number) => {
        const sbad = (msg: string) => bad(`source[${j}]: ${msg}`);
        if (!isRecord(s)) return sbad('must be an object { file, function, lines: { kernel: lines }, excerpt }');
        for (const key of Object.keys(s)) if (!['file', 'function', 'lines', 'excerpt'].includes(key)) sbad(`unknown key '${key}'`);
        if (typeof s.file !== 'string' || s.file === '') sbad('"file" is missing');
        else if (s.file.startsWith('/') || s.file.includes('..')) sbad(`"file" must be a path inside the kernel tree (got '${s.file}')`);
        if (typeof s.function !== 'string' || s.function === '') sbad('"function" is missing');
        let linesOk = isRecord(s.lines) && Object.keys(s.lines).length > 0;
        if (!linesOk) sbad(`"lines" must name the kernels the citation is true of, each with the lines of the excerpt there: { "6.12.117": "123-140" } (got ${JSON.stringify(s.lines)})`);
        else
          for (const [kernel, at] of Object.entries(s.lines as Record<string, unknown>)) {
            if (!KERNEL_RELEASE.test(kernel)) {
              sbad(`lines: '${kernel}' is not a kernel release as uname -r gives it ('6.12.117', '7.3.0-rc7')`);
              linesOk = false;
            } else if (typeof at !== 'string' || !LINES.test(at)) {
              sbad(`lines["${kernel}"] must look like '123' or '123-140' (got ${JSON.stringify(at)})`);
              linesOk = false;
            }
          }
        if (typeof s.excerpt !== 'string' || s.excerpt.trim() === '') sbad('"excerpt" is missing: the lines of the function that explain the difference, verbatim');
        if (typeof s.file === 'string' && typeof s.function === 'string' && linesOk && typeof s.excerpt === 'string') {
          source.push({ file: s.file, function: s.function, lines: { ...(s.lines as Record<string, string>) }, excerpt: s.excerpt });
        }
      });

    if (typeof scenario === 'string' && between) {
      const key = `${scenario} ${between.join('/')} ${JSON.stringify(when ?? {})}`;
      if (seen.has(key)) bad(`listed twice for ${between.join(' vs ')}${when ? ` when ${JSON.stringify(when)}` : ''}`);
      seen.add(key);
      entries.push({ scenario, between, expect, summary: String(raw.summary ?? ''), explanation: String(raw.explanation ?? ''), source, ...(when ? { when } : {}) });
    }
  });
  if (problems.length > 0) throw new KnownDifferencesError(`${where}: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  return entries;
}

function parseExpectation(v: unknown, bad: (msg: string) => void): ExpectedStep[] | undefined {
  if (typeof v === 'string') {
    if (!ERRNO_NAME.test(v)) return void bad(`'${v}' is not an errno name ('OK', 'EINVAL', ...)`);
    return [{ step: -1, errno: v }];
  }
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) return void bad('an empty list expects nothing');
  const steps: ExpectedStep[] = [];
  for (const [i, item] of list.entries()) {
    const at = Array.isArray(v) ? `[${i}] ` : '';
    if (!isRecord(item)) return void bad(`${at}must be an errno name or an object { step?, errno?, out? }`);
    for (const key of Object.keys(item)) if (!['step', 'errno', 'out'].includes(key)) bad(`${at}unknown key '${key}'`);
    const step = item.step ?? -1;
    if (typeof step !== 'number' || !Number.isInteger(step)) return void bad(`${at}"step" must be an integer index (negative from the end)`);
    if (item.errno !== undefined && (typeof item.errno !== 'string' || !ERRNO_NAME.test(item.errno))) return void bad(`${at}"errno" ${JSON.stringify(item.errno)} is not an errno name`);
    if (item.out !== undefined) {
      if (!isRecord(item.out) || Object.keys(item.out).length === 0) return void bad(`${at}"out" must be a non-empty object of output fields`);
      for (const [k, val] of Object.entries(item.out)) if (!isOutValue(val)) return void bad(`${at}out.${k} must be a string, number, boolean or null (bigints as decimal strings)`);
    }
    if (item.errno === undefined && item.out === undefined) return void bad(`${at}expects nothing: give "errno" and/or "out"`);
    if (steps.some((s) => s.step === step)) return void bad(`${at}step ${step} is expected twice`);
    steps.push({ step, ...(item.errno !== undefined ? { errno: item.errno as string } : {}), ...(item.out !== undefined ? { out: item.out as Record<string, OutValue> } : {}) });
  }
  return steps;
}

export function loadKnownDifferences(path: string = KNOWN_DIFFERENCES_PATH, scenarioIds?: ReadonlySet<string>): KnownDifference[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new KnownDifferencesError(`${path}: cannot read the known differences: ${(e as Error).message}`);
  }
  return parseKnownDifferences(text, path, scenarioIds);
}

/** One citation as a kernel's report shows it: the lines are that kernel's, the link goes to its version. */
export interface KernelCitation {
  file: string;
  function: string;
  /** The kernel release the lines are of. */
  kernel: string;
  /** '123' or '123-140' in that kernel's tree. */
  lines: string;
  excerpt: string;
  /** The excerpt's first line in that kernel's version of the file, on Elixir (the release's upstream tag). */
  url: string;
}

/** The upstream tag of a kernel release: 6.12.117 -> v6.12.117, 7.2.0 -> v7.2, 7.3.0-rc7 -> v7.3-rc7. */
export function kernelTag(kernel: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)(-rc\d+)?$/.exec(kernel);
  if (!m) throw new RangeError(`not a kernel release: ${JSON.stringify(kernel)}`);
  const [, major, minor, sub, rc] = m;
  return `v${major}.${minor}${sub === '0' ? '' : `.${sub}`}${rc ?? ''}`;
}

/** The citations of an entry for kernel `kernel`'s report, each with its lines there and a link to them. */
export function kernelCitations(k: Pick<KnownDifference, 'source'>, kernel: string): KernelCitation[] {
  return citationsOf(k, kernel).map((s) => {
    const lines = s.lines[kernel]!;
    const from = lines.split('-')[0];
    return {
      file: s.file,
      function: s.function,
      kernel,
      lines,
      excerpt: s.excerpt,
      url: `https://elixir.bootlin.com/linux/${kernelTag(kernel)}/source/${s.file}#L${from}`,
    };
  });
}
