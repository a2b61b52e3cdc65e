// The audit's host side: reads the raw results the guest suites wrote (one
// audit-raw.json per profile), merges them into one matrix (scenario x backend
// x {kernel, model}), computes the differences between real type1 and each
// compat backend, checks them against the known differences, and gives a
// verdict. Nothing passes by absence: a profile that did not run, a backend
// that was unavailable, a scenario without a result, are failures of the
// audit, named as such.
import { readFileSync } from 'node:fs';
import { modelUnknownReasons, modelUnknowns, observationDifferences } from './record.ts';
import { appliesTo, appliesToPlatform, COMPARED_PAIRS, kernelCitations, knownDifferenceAnchor, platformSwitches, type ExpectedStep, type KnownDifference } from './known-differences.ts';
import { BASELINE_SWITCHES } from '../model/kernel-behaviour.ts';
import {
  AUDIT_RAW_FILE,
  BACKEND_IDS,
  HELD_BACK_BY_FINDING,
  REFUSED_BY_PLATFORM,
  PROFILE_BACKENDS,
  type AuditProfile,
  type AuditRaw,
  type BackendId,
  type HostFacts,
  type Observation,
  type OutValue,
  type Step,
} from './types.ts';

export const AUDIT_PROFILES: readonly AuditProfile[] = ['viommu', 'mock'];

/** The profile whose guest runs each backend. */
export const BACKEND_PROFILE: Record<BackendId, AuditProfile> = {
  type1: 'viommu',
  'compat-device': 'viommu',
  'compat-mock': 'mock',
  native: 'viommu',
};

/** Stands for a value or a step one side of a comparison does not have. */
export const ABSENT = '(absent)';
export type Compared = OutValue | typeof ABSENT;

export type Cell =
  | {
      status: 'ran';
      kernel: Observation;
      model: Observation | { error: string };
      /** How the model's prediction differs from the kernel; empty when it agrees. */
      modelMismatch: string[];
      /** Bits the model's prediction left unknown (Step.unknown), compared without them: absent when none. */
      modelUnchecked?: string[];
    }
  | { status: 'not-applicable'; reason: string }
  /** The backend could not run in its profile (the guest said why). */
  | { status: 'unavailable'; reason: string }
  /** The running kernel lacks what the backend needs (probed, the guest said what): not a failure. */
  | { status: 'skipped'; reason: string }
  /** No result at all: the profile did not run, or its raw file lacks the scenario. */
  | { status: 'missing'; reason: string };

/** One difference between two backends' kernel observations. */
export interface DiffPoint {
  /** 'errno' or 'out.KEY'. */
  field: string;
  /** The step's index in each backend's steps (steps are compared by position: the same index). */
  steps: [number, number];
  /** The step's op; 'A / B' where the backends name it differently (a backend-specific role). */
  op: string;
  values: [Compared, Compared];
}

export type ComparisonState =
  /** Both ran and agree. */
  | 'same'
  /** They differ, and a known difference lists exactly that. */
  | 'explained'
  /** They differ and nothing lists it. */
  | 'unexplained'
  /** They differ and an entry is listed, but what it expects is not what happens. */
  | 'changed'
  /** An entry is listed but the difference no longer shows: the kernel changed. */
  | 'stale'
  /** One side has no kernel result (not applicable, unavailable, missing). */
  | 'not-compared';

export interface Comparison {
  between: [BackendId, BackendId];
  /** Compared on Step.normalised where declared: the backends run on different machines. */
  normalised: boolean;
  state: ComparisonState;
  points: DiffPoint[];
  /** The listed entry for this scenario and pair, if any. */
  known?: KnownDifference;
  /** Why (changed, stale, not-compared). */
  detail?: string[];
  /** The anchor of the explanation (listed) or of the unexplained-difference entry. */
  anchor?: string;
}

export interface AuditRow {
  id: string;
  area: string;
  title: string;
  /** The state before the first step, as the catalogue describes it. */
  setup?: string;
  /** Why type1 and compat-mock are not compared for this scenario (it audits the IOMMU under the container). */
  platformDependent?: string;
  cells: Record<BackendId, Cell>;
  comparisons: Comparison[];
}

export interface ProfileState {
  state: 'ran' | 'missing';
  kernel?: string;
  /** The IOMMU platform its device ran on (AuditRaw.platform.name), where the raw file records one. */
  platform?: string;
  /** The raw file read. */
  source?: string;
}

export interface BackendState {
  profile: AuditProfile;
  state: 'ran' | 'unavailable' | 'skipped' | 'missing';
  reason?: string;
}

export interface AuditVerdict {
  ok: boolean;
  scenarios: number;
  comparisons: { same: number; explained: number; unexplained: number; changed: number; stale: number; notCompared: number };
  modelMismatches: { scenario: string; backend: BackendId; detail: string[] }[];
  /** Cells the model predicted but for bits it cannot tell (Step.unknown), each with its reason: absent when none. */
  modelUnchecked?: { scenario: string; backend: BackendId; detail: string[] }[];
  /** Structural problems: missing profiles or backends, inconsistent raw files, a bad known-differences table. */
  problems: string[];
  /** One line for each reason the audit fails. */
  failures: string[];
}

export interface Audit {
  generated: string;
  profiles: Record<AuditProfile, ProfileState>;
  backends: Record<BackendId, BackendState>;
  rows: AuditRow[];
  known: KnownDifference[];
  /** The kernel's switches as the raw files recorded them (6.12's where none did): what `when` was matched against. */
  behaviour: Record<string, boolean>;
  verdict: AuditVerdict;
  /** `audit --host`: the host the device half ran on (the raw file's HostFacts); absent for a VM audit. */
  host?: HostFacts;
}

/** Why a host audit (audit --host) has no compat-mock: it is reported skipped, not missing. */
export const HOST_AUDIT_SCOPE =
  'not part of a host audit (audit --host runs the device half): compat-mock runs on the selftest mock domain (CONFIG_IOMMUFD_TEST) in the mock profile\'s guest, which `iommufd-conformance audit` boots';

export class AuditInputError extends Error {
  override name = 'AuditInputError';
}

// ---------------------------------------------------------------- raw files

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What lib/audit/record.ts writes: 'OK', an errno name, or 'errno N' for a number without a name. */
const ERRNO_LABEL = /^(OK|E[A-Z0-9_]+|errno \d+)$/;

function checkObservation(o: unknown, where: string, problems: string[]): void {
  if (!isRecord(o) || !Array.isArray(o.steps)) return void problems.push(`${where}: must be { steps: [...] }`);
  o.steps.forEach((s: unknown, i: number) => {
    const at = `${where}.steps[${i}]`;
    if (!isRecord(s)) return void problems.push(`${at}: must be an object`);
    if (typeof s.op !== 'string' || s.op === '') problems.push(`${at}: "op" is missing`);
    if (typeof s.errno !== 'string' || !ERRNO_LABEL.test(s.errno)) problems.push(`${at}: "errno" must be 'OK' or an errno name (got ${JSON.stringify(s.errno)})`);
    for (const f of ['in', 'out', 'normalised'] as const) {
      if (s[f] === undefined) continue;
      if (!isRecord(s[f])) problems.push(`${at}: "${f}" must be an object`);
      else
        for (const [k, v] of Object.entries(s[f] as object))
          if (!(v === null || ['string', 'number', 'boolean'].includes(typeof v))) problems.push(`${at}: ${f}.${k} is not a string, number, boolean or null`);
    }
  });
  if (o.steps.length === 0) problems.push(`${where}: no steps (the last step is the one under audit)`);
}

/** Validates a parsed raw file; throws AuditInputError listing every problem. */
export function validateRaw(doc: unknown, where: string): AuditRaw {
  const problems: string[] = [];
  if (!isRecord(doc)) throw new AuditInputError(`${where}: not an audit raw file (top level is not an object)`);
  if (doc.format !== 1) problems.push(`"format" must be 1 (got ${JSON.stringify(doc.format)})`);
  const profile = doc.profile as AuditProfile;
  if (!AUDIT_PROFILES.includes(profile)) problems.push(`"profile" must be one of ${AUDIT_PROFILES.join(', ')} (got ${JSON.stringify(doc.profile)})`);
  if (typeof doc.kernel !== 'string') problems.push('"kernel" (uname -r) is missing');
  if (doc.platform !== undefined) {
    const pf = doc.platform;
    if (!isRecord(pf) || typeof pf.name !== 'string' || pf.name === '' || !['interruptRemapping', 'type1AllowUnsafeInterrupts', 'iommufdAllowUnsafeInterrupts'].every((k) => typeof pf[k] === 'boolean') || !['undefined', 'boolean'].includes(typeof pf.domainMapsWithoutAccess) || !(pf.driver === undefined || ['intel-iommu', 'amd-iommu', 'virtio-iommu'].includes(pf.driver as string))) {
      problems.push('"platform" must be { name, interruptRemapping, type1AllowUnsafeInterrupts, iommufdAllowUnsafeInterrupts[, domainMapsWithoutAccess, driver] } when given');
    }
  }
  if (doc.behaviour !== undefined && (!isRecord(doc.behaviour) || !Object.values(doc.behaviour).every((v) => typeof v === 'boolean'))) {
    problems.push('"behaviour" must be an object of booleans (KernelBehaviour) when given');
  }
  if (!isRecord(doc.backends)) problems.push('"backends" must be an object');
  else if (AUDIT_PROFILES.includes(profile)) {
    for (const b of Object.keys(doc.backends)) {
      if (!PROFILE_BACKENDS[profile].includes(b as BackendId)) problems.push(`backends: '${b}' is not a backend of profile ${profile}`);
      const a = doc.backends[b];
      if (!isRecord(a) || typeof a.available !== 'boolean') problems.push(`backends.${b}: must be { available: boolean, reason? }`);
      else if (!a.available && typeof a.reason !== 'string') problems.push(`backends.${b}: unavailable without a reason`);
      else if (a.skipped !== undefined && (typeof a.skipped !== 'boolean' || a.available)) problems.push(`backends.${b}: "skipped" must be a boolean, and only on an unavailable backend`);
    }
  }
  if (doc.host !== undefined && (!isRecord(doc.host) || typeof doc.host.kernel !== 'string' || !isRecord(doc.host.device) || typeof doc.host.device.bdf !== 'string' || !isRecord(doc.host.iommu))) {
    problems.push('"host" (audit --host) must be { kernel, device: { bdf, ... }, iommu: { ... }, ... } when given');
  }
  if (!Array.isArray(doc.scenarios)) problems.push('"scenarios" must be an array');
  else {
    const ids = new Set<string>();
    doc.scenarios.forEach((s: unknown, i: number) => {
      const at = `scenarios[${i}]${isRecord(s) && typeof s.id === 'string' ? ` (${s.id})` : ''}`;
      if (!isRecord(s)) return void problems.push(`${at}: must be an object`);
      if (typeof s.id !== 'string' || !/^[a-z0-9]+(?:[-.][a-z0-9]+)*$/.test(s.id)) problems.push(`${at}: "id" must be kebab-case with dots (got ${JSON.stringify(s.id)})`);
      else if (ids.has(s.id)) problems.push(`${at}: id listed twice`);
      else ids.add(s.id);
      if (typeof s.area !== 'string' || s.area === '') problems.push(`${at}: "area" is missing`);
      if (typeof s.title !== 'string' || s.title === '') problems.push(`${at}: "title" is missing`);
      for (const f of ['setup', 'platformDependent'] as const) {
        if (s[f] !== undefined && (typeof s[f] !== 'string' || s[f] === '')) problems.push(`${at}: "${f}" must be non-empty text when given`);
      }
      if (!isRecord(s.results)) return void problems.push(`${at}: "results" must be an object`);
      for (const [b, r] of Object.entries(s.results)) {
        const rat = `${at}.results.${b}`;
        if (AUDIT_PROFILES.includes(profile) && !PROFILE_BACKENDS[profile].includes(b as BackendId)) problems.push(`${rat}: '${b}' is not a backend of profile ${profile}`);
        if (!isRecord(r)) {
          problems.push(`${rat}: must be an object`);
          continue;
        }
        if (r.status === 'not-applicable') {
          if (typeof r.reason !== 'string' || r.reason === '') problems.push(`${rat}: not-applicable without a reason`);
        } else if (r.status === 'ran') {
          checkObservation(r.kernel, `${rat}.kernel`, problems);
          if (isRecord(r.model) && typeof r.model.error === 'string') {
            // The model threw: kept, and counted as a model mismatch.
          } else checkObservation(r.model, `${rat}.model`, problems);
        } else problems.push(`${rat}: "status" must be 'ran' or 'not-applicable' (got ${JSON.stringify(r.status)})`);
      }
    });
  }
  if (problems.length > 0) throw new AuditInputError(`${where}: ${problems.length} problem(s):\n  ${problems.slice(0, 50).join('\n  ')}${problems.length > 50 ? `\n  ... and ${problems.length - 50} more` : ''}`);
  return doc as unknown as AuditRaw;
}

export interface LoadedRaw {
  path: string;
  raw: AuditRaw;
}

export function readRawFile(path: string): LoadedRaw {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new AuditInputError(`${path}: cannot read: ${(e as Error).message}`);
  }
  return { path, raw: validateRaw(doc, path) };
}

/** The scenario ids the raw files list (the catalogue the known differences are checked against). */
export function scenarioIdsOf(raws: LoadedRaw[]): Set<string> {
  return new Set(raws.flatMap((r) => r.raw.scenarios.map((s) => s.id)));
}

// ---------------------------------------------------------------- comparing

function isObservation(m: Observation | { error: string }): m is Observation {
  return Array.isArray((m as Observation).steps);
}

function show(v: Compared | undefined): string {
  return v === undefined ? ABSENT : typeof v === 'string' && v !== ABSENT ? JSON.stringify(v) : String(v);
}

/** How the model's prediction differs from the kernel, field by field; exact (never normalised). */
export function modelMismatch(kernel: Observation, model: Observation | { error: string }): string[] {
  if (!isObservation(model)) return [`the model threw: ${model.error}`];
  const plain = (field: string, v: OutValue | undefined) => (field === 'errno' || field === 'op' || field === '(step)' ? String(v) : show(v));
  return observationDifferences(kernel, model).map((d) => `step ${d.step} ${d.op}: ${d.field}: kernel ${plain(d.field, d.kernel)}, model ${plain(d.field, d.model)}`);
}

function valueOf(step: Step, key: string, normalised: boolean): Compared {
  if (normalised && step.normalised && key in step.normalised) return step.normalised[key]!;
  return step.out && key in step.out ? step.out[key]! : ABSENT;
}

function keysOf(step: Step, normalised: boolean): string[] {
  return [...Object.keys(step.out ?? {}), ...(normalised ? Object.keys(step.normalised ?? {}) : [])];
}

/**
 * The differences between two backends' kernel observations, step by step by position (types.ts: where a
 * backend plays a role with other ioctls, the op names differ, and that is not a difference). A step only one
 * side has shows as an errno difference against (absent).
 */
export function diffObservations(a: Observation, b: Observation, normalised: boolean): DiffPoint[] {
  const points: DiffPoint[] = [];
  const n = Math.max(a.steps.length, b.steps.length);
  for (let i = 0; i < n; i++) {
    const sa = a.steps[i];
    const sb = b.steps[i];
    const op = sa && sb && sa.op !== sb.op ? `${sa.op} / ${sb.op}` : (sa ?? sb)!.op;
    if (!sa || !sb) {
      points.push({ field: 'errno', steps: [i, i], op, values: [sa ? sa.errno : ABSENT, sb ? sb.errno : ABSENT] });
      continue;
    }
    if (sa.errno !== sb.errno) points.push({ field: 'errno', steps: [i, i], op, values: [sa.errno, sb.errno] });
    for (const key of new Set([...keysOf(sa, normalised), ...keysOf(sb, normalised)])) {
      const va = valueOf(sa, key, normalised);
      const vb = valueOf(sb, key, normalised);
      if (va !== vb) points.push({ field: `out.${key}`, steps: [i, i], op, values: [va, vb] });
    }
  }
  return points;
}

function resolveStep(e: ExpectedStep, steps: Step[]): number {
  return e.step < 0 ? steps.length + e.step : e.step;
}

/**
 * Checks a listed difference against what the two backends did. Returns the ways it does not match: an
 * expected value that is not what the backend reported, or a difference the entry does not name.
 */
export function checkKnown(k: KnownDifference, obs: [Observation, Observation], points: DiffPoint[], normalised: boolean): string[] {
  const problems: string[] = [];
  k.between.forEach((backend, side) => {
    const steps = obs[side]!.steps;
    for (const e of k.expect[backend] ?? []) {
      const idx = resolveStep(e, steps);
      const step = steps[idx];
      if (!step) {
        problems.push(`${backend}: the entry expects step ${e.step}, but ${backend} ran ${steps.length} step(s)`);
        continue;
      }
      if (e.errno !== undefined && step.errno !== e.errno) problems.push(`${backend} ${step.op}: listed errno ${e.errno}, now ${step.errno}`);
      for (const [key, want] of Object.entries(e.out ?? {})) {
        const got = valueOf(step, key, normalised);
        if (got !== want) problems.push(`${backend} ${step.op}: listed out.${key} = ${show(want)}, now ${show(got)}`);
      }
    }
  });
  const names = (side: 0 | 1, p: DiffPoint) => {
    const backend = k.between[side];
    const steps = obs[side]!.steps;
    return (k.expect[backend] ?? []).some((e) => {
      if (resolveStep(e, steps) !== p.steps[side]) return false;
      if (p.field === 'errno') return e.errno !== undefined;
      if (p.field.startsWith('out.')) return e.out !== undefined && p.field.slice(4) in e.out;
      return false;
    });
  };
  for (const p of points) {
    if (!names(0, p) && !names(1, p)) {
      problems.push(`not named by the entry: ${p.op} ${p.field}: ${k.between[0]} ${showPointValue(p, 0)}, ${k.between[1]} ${showPointValue(p, 1)}`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------- the audit

export function buildAudit(raws: LoadedRaw[], known: KnownDifference[], extraProblems: string[] = [], now: Date = new Date()): Audit {
  const problems = [...extraProblems];
  const byProfile = new Map<AuditProfile, LoadedRaw>();
  for (const r of raws) {
    if (byProfile.has(r.raw.profile)) problems.push(`two raw files for profile ${r.raw.profile}: ${byProfile.get(r.raw.profile)!.path}, ${r.path}`);
    else byProfile.set(r.raw.profile, r);
  }
  const profiles = {} as Record<AuditProfile, ProfileState>;
  for (const p of AUDIT_PROFILES) {
    const r = byProfile.get(p);
    profiles[p] = r ? { state: 'ran', kernel: r.raw.kernel, ...(r.raw.platform ? { platform: r.raw.platform.name } : {}), source: r.path } : { state: 'missing' };
  }
  // audit --host: the device half ran on a host; the mock profile's half is not part of such a run.
  const host = [...byProfile.values()].find((r) => r.raw.host)?.raw.host;
  const kernels = new Set([...byProfile.values()].map((r) => r.raw.kernel));
  if (kernels.size > 1) problems.push(`the profiles ran different kernels (${[...byProfile.values()].map((r) => `${r.raw.profile}: ${r.raw.kernel}`).join(', ')}): their results are not one audit`);

  const backends = {} as Record<BackendId, BackendState>;
  for (const b of BACKEND_IDS) {
    const profile = BACKEND_PROFILE[b];
    const r = byProfile.get(profile);
    const avail = r?.raw.backends[b];
    if (!r && host) backends[b] = { profile, state: 'skipped', reason: HOST_AUDIT_SCOPE };
    else if (!r) backends[b] = { profile, state: 'missing', reason: `profile ${profile} did not run (no ${AUDIT_RAW_FILE})` };
    else if (!avail) backends[b] = { profile, state: 'missing', reason: `the ${profile} raw file does not mention backend ${b}` };
    else if (!avail.available) backends[b] = { profile, state: avail.skipped ? 'skipped' : 'unavailable', reason: avail.reason ?? 'no reason given' };
    else backends[b] = { profile, state: 'ran' };
  }
  for (const b of BACKEND_IDS) {
    const s = backends[b];
    if (s.state === 'missing' || s.state === 'unavailable') problems.push(`backend ${b} ${s.state}: ${s.reason}`);
  }
  // A skipped backend fails nothing, but an audit in which nothing ran proves nothing.
  if (BACKEND_IDS.every((b) => backends[b].state === 'skipped')) problems.push('every backend was skipped: the audit ran nothing');

  // The catalogue: the order of the first profile that ran; every raw file must list the same scenarios.
  const order: { id: string; area: string; title: string; setup?: string; platformDependent?: string }[] = [];
  const meta = new Map<string, { area: string; title: string; profiles: AuditProfile[] }>();
  for (const p of AUDIT_PROFILES) {
    const r = byProfile.get(p);
    if (!r) continue;
    for (const s of r.raw.scenarios) {
      const m = meta.get(s.id);
      if (!m) {
        meta.set(s.id, { area: s.area, title: s.title, profiles: [p] });
        order.push({ id: s.id, area: s.area, title: s.title, ...(s.setup ? { setup: s.setup } : {}), ...(s.platformDependent ? { platformDependent: s.platformDependent } : {}) });
      } else {
        m.profiles.push(p);
        const first = order.find((o) => o.id === s.id)!;
        if (m.area !== s.area || m.title !== s.title || first.platformDependent !== s.platformDependent) {
          problems.push(`scenario ${s.id}: area, title or platformDependent differ between the raw files (built from different catalogues?)`);
        }
      }
    }
  }
  const ran = AUDIT_PROFILES.filter((p) => byProfile.has(p));
  for (const [id, m] of meta) {
    if (m.profiles.length !== ran.length) problems.push(`scenario ${id} is only in the raw file of ${m.profiles.join(', ')} (the profiles ran different catalogues)`);
  }

  // The kernel's probed behaviour, merged over the raw files: entries with a `when` apply only where it
  // matches. A switch a raw file does not record (type1's, in the mock profile, which borrows no VFIO
  // group) is taken from the others; two raw files recording different values are two kernels.
  const behaviour: Record<string, boolean> = { ...BASELINE_SWITCHES };
  const recordedBy = new Map<string, string>();
  for (const r of byProfile.values()) {
    for (const [key, value] of Object.entries(r.raw.behaviour ?? BASELINE_SWITCHES)) {
      const first = recordedBy.get(key);
      if (first !== undefined && behaviour[key] !== value) problems.push(`the raw files come from kernels that behave differently (${key}: ${first} ${behaviour[key]}, ${r.raw.profile} ${value}): audit one kernel at a time`);
      else if (first === undefined) {
        recordedBy.set(key, r.raw.profile);
        behaviour[key] = value;
      }
    }
  }
  // The platform: the device profile's (the mock profile records none); two device raw files are refused above.
  const platform = platformSwitches([...byProfile.values()].find((r) => r.raw.platform)?.raw.platform);
  // Where several entries apply to one scenario and pair, the most specific (the most `when` switches) wins:
  // an entry for a platform that refuses the device replaces the general one for that platform.
  // The entries of other platforms are not this audit's: neither expected nor listed in its reports.
  const ofPlatform = known.filter((k) => appliesToPlatform(k, platform));
  const applicable = ofPlatform.filter((k) => appliesTo(k, behaviour, platform));
  const specificity = (k: KnownDifference) => Object.keys(k.when ?? {}).length;
  const knownBy = new Map([...applicable].sort((x, y) => specificity(x) - specificity(y)).map((k) => [`${k.scenario} ${k.between.join('/')}`, k]));
  const modelMismatches: AuditVerdict['modelMismatches'] = [];
  const modelUnchecked: NonNullable<AuditVerdict['modelUnchecked']> = [];
  const rows: AuditRow[] = order.map(({ id, area, title, setup, platformDependent }) => {
    const cells = {} as Record<BackendId, Cell>;
    for (const b of BACKEND_IDS) {
      const state = backends[b];
      const r = byProfile.get(state.profile);
      const result = r?.raw.scenarios.find((s) => s.id === id)?.results[b];
      if (state.state === 'missing') cells[b] = { status: 'missing', reason: state.reason! };
      else if (state.state === 'unavailable' || state.state === 'skipped') cells[b] = { status: state.state, reason: state.reason! };
      else if (!result) {
        cells[b] = { status: 'missing', reason: `no result for ${b} in ${r ? r.path : `profile ${state.profile}`}` };
        if (r?.raw.scenarios.some((s) => s.id === id)) problems.push(`scenario ${id}: no result recorded for ${b}`);
      } else if (result.status === 'not-applicable') cells[b] = { status: 'not-applicable', reason: result.reason };
      else {
        const mm = modelMismatch(result.kernel, result.model);
        const mu = isObservation(result.model) ? modelUnknowns(result.model) : [];
        cells[b] = { status: 'ran', kernel: result.kernel, model: result.model, modelMismatch: mm, ...(mu.length > 0 ? { modelUnchecked: mu } : {}) };
        if (mm.length > 0) modelMismatches.push({ scenario: id, backend: b, detail: mm });
        if (mu.length > 0) modelUnchecked.push({ scenario: id, backend: b, detail: mu });
      }
    }
    const comparisons = COMPARED_PAIRS.map(([a, b]): Comparison => {
      const between: [BackendId, BackendId] = [a, b];
      const normalised = BACKEND_PROFILE[a] !== BACKEND_PROFILE[b];
      const k = knownBy.get(`${id} ${a}/${b}`);
      const base = { between, normalised, ...(k ? { known: k, anchor: knownDifferenceAnchor(k) } : {}) };
      const ca = cells[a];
      const cb = cells[b];
      if (platformDependent !== undefined && normalised) {
        // The scenario audits the IOMMU under the container: the mock's answer says nothing about compat.
        const why = `platform-dependent: ${platformDependent}`;
        if (k) return { ...base, state: 'stale', points: [], detail: [`listed, but ${a} and ${b} are not compared for this scenario (${why}): remove the entry`] };
        return { ...base, state: 'not-compared', points: [], detail: [why] };
      }
      if (ca.status !== 'ran' || cb.status !== 'ran') {
        const why = [ca, cb].map((c, i) => (c.status === 'ran' ? null : `${between[i]} ${c.status}: ${c.reason}`)).filter((x): x is string => x !== null);
        // A listed difference on a scenario that is not applicable there can no longer show: stale. On a
        // missing or unavailable backend it cannot be checked, which that backend's own failure reports.
        // A cell the platform refused (no isolated MSI) says nothing of the scenario: not compared, like a
        // backend that did not run, so that an entry listed for other platforms neither passes nor goes stale.
        // So is a cell a known kernel finding held back (HELD_BACK_BY_FINDING).
        const refused = [ca, cb].some((c) => c.status === 'not-applicable' && (c.reason.startsWith(REFUSED_BY_PLATFORM) || c.reason.startsWith(HELD_BACK_BY_FINDING)));
        if (k && !refused && [ca, cb].some((c) => c.status === 'not-applicable')) {
          return { ...base, state: 'stale', points: [], detail: [`listed, but the scenario no longer runs on both: ${why.join('; ')}`] };
        }
        return { ...base, state: 'not-compared', points: [], detail: why };
      }
      const points = diffObservations(ca.kernel, cb.kernel, normalised);
      if (points.length === 0) {
        if (k) return { ...base, state: 'stale', points, detail: [`listed, but ${a} and ${b} now agree (the last step: ${ca.kernel.steps.at(-1)!.op} ${ca.kernel.steps.at(-1)!.errno}): the kernel changed`] };
        return { ...base, state: 'same', points };
      }
      if (!k) return { ...base, state: 'unexplained', points, anchor: `diff-${id}--${a}--${b}`.replace(/[^A-Za-z0-9._-]/g, '_') };
      const mismatch = checkKnown(k, [ca.kernel, cb.kernel], points, normalised);
      if (mismatch.length > 0) return { ...base, state: 'changed', points, detail: mismatch };
      return { ...base, state: 'explained', points };
    });
    return { id, area, title, ...(setup ? { setup } : {}), ...(platformDependent ? { platformDependent } : {}), cells, comparisons };
  });

  const counts = { same: 0, explained: 0, unexplained: 0, changed: 0, stale: 0, notCompared: 0 };
  const failures = [...problems];
  for (const row of rows) {
    for (const c of row.comparisons) {
      if (c.state === 'not-compared') counts.notCompared++;
      else counts[c.state]++;
      const pair = `${c.between[0]} vs ${c.between[1]}`;
      const first = c.points[0];
      const what = first ? `${first.op} ${first.field}: ${showPointValue(first, 0)} vs ${showPointValue(first, 1)}${c.points.length > 1 ? ` (+${c.points.length - 1} more)` : ''}` : '';
      if (c.state === 'unexplained') failures.push(`${row.id}: ${pair} differ and no known difference lists it: ${what}`);
      if (c.state === 'changed') failures.push(`${row.id}: ${pair}: the listed difference no longer matches: ${c.detail!.join('; ')}`);
      if (c.state === 'stale') failures.push(`${row.id}: ${pair}: listed but no longer shows: ${c.detail!.join('; ')}`);
    }
  }
  // An entry whose scenario is not in the catalogue is rejected by the loader; one that is, but did not
  // reach a comparison here, is caught above (stale or not-compared on a failing backend).
  for (const m of modelMismatches) failures.push(`${m.scenario}: the model's prediction for ${m.backend} differs from the kernel: ${m.detail.join('; ')}`);

  return {
    generated: now.toISOString(),
    profiles,
    backends,
    rows,
    known: ofPlatform,
    behaviour,
    verdict: { ok: failures.length === 0, scenarios: rows.length, comparisons: counts, modelMismatches, ...(modelUnchecked.length > 0 ? { modelUnchecked } : {}), problems, failures },
    ...(host ? { host } : {}),
  };
}

// ---------------------------------------------------------------- audit.json

export interface AuditJsonBackend {
  status: Cell['status'];
  reason?: string;
  /** The step under audit (the last one): errno name and outputs. */
  errno?: string;
  out?: Record<string, OutValue>;
  normalised?: Record<string, OutValue>;
  steps?: Step[];
  model?: { errno: string; out?: Record<string, OutValue>; steps: Step[] } | { error: string };
  modelAgrees?: boolean;
  modelMismatch?: string[];
  modelUnchecked?: string[];
}

/** audit.json: one entry a scenario, each backend's errno name and outputs, the model's prediction, the verdict. */
export function auditJson(a: Audit): object {
  const kernel = Object.values(a.profiles).find((p) => p.kernel !== undefined)?.kernel;
  return {
    format: 1,
    generated: a.generated,
    profiles: a.profiles,
    backends: a.backends,
    behaviour: a.behaviour,
    ...(a.host ? { host: a.host } : {}),
    scenarios: a.rows.map((row) => ({
      id: row.id,
      area: row.area,
      title: row.title,
      backends: Object.fromEntries(
        BACKEND_IDS.map((b): [BackendId, AuditJsonBackend] => {
          const c = row.cells[b];
          if (c.status !== 'ran') return [b, { status: c.status, reason: c.reason }];
          const last = c.kernel.steps.at(-1)!;
          const mlast = isObservation(c.model) ? c.model.steps.at(-1) : undefined;
          return [
            b,
            {
              status: 'ran',
              errno: last.errno,
              ...(last.out ? { out: last.out } : {}),
              ...(last.normalised ? { normalised: last.normalised } : {}),
              steps: c.kernel.steps,
              model: isObservation(c.model) ? { errno: mlast?.errno ?? ABSENT, ...(mlast?.out ? { out: mlast.out } : {}), steps: c.model.steps } : { error: c.model.error },
              modelAgrees: c.modelMismatch.length === 0,
              ...(c.modelMismatch.length > 0 ? { modelMismatch: c.modelMismatch } : {}),
              ...(c.modelUnchecked ? { modelUnchecked: c.modelUnchecked } : {}),
            },
          ];
        }),
      ),
      comparisons: row.comparisons.map((c) => ({
        between: c.between,
        normalised: c.normalised,
        state: c.state,
        ...(c.points.length > 0 ? { differences: c.points } : {}),
        ...(c.known ? { known: { summary: c.known.summary, anchor: knownDifferenceAnchor(c.known) } } : {}),
        ...(c.detail ? { detail: c.detail } : {}),
      })),
    })),
    // Each entry with the citations of the audited kernel's tree, at its lines there (none when no kernel ran).
    knownDifferences: a.known.map((k) => ({ anchor: knownDifferenceAnchor(k), ...k, source: kernel === undefined ? [] : kernelCitations(k, kernel) })),
    verdict: a.verdict,
  };
}

// ---------------------------------------------------------------- display helpers for the renderers

export function showValue(v: Compared | undefined): string {
  return show(v);
}

/** One side of a difference as text: errno names bare, outputs as JSON values. */
export function showPointValue(p: DiffPoint, side: 0 | 1): string {
  return p.field === 'errno' ? String(p.values[side]) : show(p.values[side]);
}

/** The short text of a cell: errno of the step under audit and its outputs. */
export function cellSummary(c: Cell): { errno: string; out: string[] } {
  if (c.status !== 'ran') return { errno: c.status, out: [] };
  const last = c.kernel.steps.at(-1)!;
  return { errno: last.errno, out: Object.entries(last.out ?? {}).map(([k, v]) => `${k}=${show(v)}`) };
}

/** The comparisons a cell takes part in that mark it: its backends differ, or a listed difference went stale. */
export function markedComparisons(row: AuditRow, b: BackendId): Comparison[] {
  return row.comparisons.filter((c) => c.between.includes(b) && (c.points.length > 0 || c.state === 'stale'));
}

/** Where a marked cell links to: the explanation (explained), or the entry saying why it fails the audit. */
export function comparisonLink(c: Comparison): string {
  return c.state === 'explained' || c.state === 'unexplained' ? c.anchor! : `${c.anchor!}-status`;
}

/** Areas in the order they first appear. */
export function areasOf(a: Audit): string[] {
  return [...new Set(a.rows.map((r) => r.area))];
}

/** The one-paragraph summary printed by the CLI and npm test. */
export function summaryLines(a: Audit): string[] {
  const v = a.verdict;
  const c = v.comparisons;
  const backendsLine = BACKEND_IDS.map((b) => `${b} ${a.backends[b].state}${a.backends[b].state === 'skipped' ? ` (${a.backends[b].reason})` : ''}`).join(', ');
  const lines = [
    `audit: ${v.scenarios} scenarios; backends: ${backendsLine}`,
    `audit: differences: ${c.explained} explained, ${c.unexplained} unexplained, ${c.changed} changed, ${c.stale} stale (listed, no longer shows); ${c.same} pairs agree, ${c.notCompared} not compared`,
    `audit: model mismatches: ${v.modelMismatches.length}`,
  ];
  if (v.modelUnchecked) {
    const reasons = new Set(a.rows.flatMap((r) => BACKEND_IDS.flatMap((b) => { const c = r.cells[b]; return c.status === 'ran' && isObservation(c.model) ? modelUnknownReasons(c.model) : []; })));
    lines.push(`audit: cells the model predicted but for bits it cannot tell (compared without them): ${v.modelUnchecked.length} (${[...reasons].join('; ')})`);
  }
  // Not-applicable cells are no tests in the guests (a scenario declared to have no counterpart there), so
  // they show in no test count: say how many there are.
  // A cell the platform refused (REFUSED_BY_PLATFORM) is a test, skipped with that reason: counted apart.
  const refused = (c: Cell) => c.status === 'not-applicable' && c.reason.startsWith(REFUSED_BY_PLATFORM);
  // A cell a known kernel finding held back (HELD_BACK_BY_FINDING) is a skipped test too.
  const heldBack = (c: Cell) => c.status === 'not-applicable' && c.reason.startsWith(HELD_BACK_BY_FINDING);
  const na = BACKEND_IDS.map((b) => [b, a.rows.filter((r) => r.cells[b].status === 'not-applicable' && !refused(r.cells[b]) && !heldBack(r.cells[b])).length] as const).filter(([, n]) => n > 0);
  if (na.length > 0) lines.push(`audit: not applicable (no test; each cell gives its reason): ${na.map(([b, n]) => `${b} ${n} of ${a.rows.length}`).join(', ')}`);
  const byPlatform = BACKEND_IDS.map((b) => [b, a.rows.filter((r) => refused(r.cells[b])).length] as const).filter(([, n]) => n > 0);
  if (byPlatform.length > 0) lines.push(`audit: refused by the platform in the setup, as the model predicts (skipped tests): ${byPlatform.map(([b, n]) => `${b} ${n} of ${a.rows.length}`).join(', ')}`);
  const held = a.rows.flatMap((r) => BACKEND_IDS.filter((b) => heldBack(r.cells[b])).map((b) => `${r.id} on ${b}`));
  if (held.length > 0) lines.push(`audit: held back by a known kernel finding (skipped tests): ${held.join(', ')}`);
  return lines;
}

/** The IOMMU platforms the device profiles ran on (one per audit today; none in raw files from before platforms). */
export function auditPlatforms(a: Audit): string[] {
  return [...new Set(Object.values(a.profiles).flatMap((p) => (p.platform ? [p.platform] : [])))];
}
