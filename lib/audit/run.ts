// Running the catalogue: a scenario on one backend is run on a fresh kernel
// target, then on a fresh model target (see targets.ts for why separately),
// and gives a BackendResult plus, when the model did not predict the kernel,
// a readable report. The guest suites (suites/vm/*/audit.test.ts) call this
// and write the raw file.
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { observationDifferences, divergenceReport, StepRecorder } from './record.ts';
import { applySetup, CATALOGUE, notApplicableOn, ScenarioContext, SETUP_DESCRIPTIONS, SetupError, type Scenario } from './scenarios.ts';
import { HeldBackByFinding, NoNativeEquivalent, type AuditMemory, type AuditTarget } from './targets.ts';
import { kernelBehaviour, type1Behaviour } from '../lockstep/models.ts';
import { AUDIT_RAW_FILE, HELD_BACK_BY_FINDING, REFUSED_BY_PLATFORM, type AuditPlatform, type AuditProfile, type AuditRaw, type BackendAvailability, type BackendId, type BackendResult, type Observation, type ScenarioResult } from './types.ts';

const DMA_ENTRY_LIMIT = '/sys/module/vfio_iommu_type1/parameters/dma_entry_limit';

/** How to make fresh targets of one backend. */
export interface BackendFactory {
  backend: BackendId;
  kernel(): AuditTarget;
  model(): AuditTarget;
  /**
   * The platform facts the model refuses the device on (no isolated MSI and the backend's
   * allow_unsafe_interrupts off, as read from /proc/interrupts and sysfs), or null where it would not.
   */
  refusal?(): string | null;
}

export interface ScenarioRun {
  result: BackendResult;
  /** Why the test fails: the model did not predict the kernel, or the kernel run itself failed. Null when it passes. */
  failure: string | null;
}

/** Sets the scenario's module parameters, runs `fn`, and puts them back. */
function withEnvironment<T>(s: Scenario, fn: () => T): T {
  const limit = s.env?.dmaEntryLimit;
  // The parameter exists wherever vfio_iommu_type1 is built in; compat never reads it, which is the point.
  if (limit === undefined || !existsSync(DMA_ENTRY_LIMIT)) return fn();
  const saved = readFileSync(DMA_ENTRY_LIMIT, 'utf8').trim();
  writeFileSync(DMA_ENTRY_LIMIT, String(limit));
  try {
    return fn();
  } finally {
    writeFileSync(DMA_ENTRY_LIMIT, saved);
  }
}

/** Runs the scenario on one target: setup (not recorded), then the body (recorded); the target is always disposed. */
function observe(s: Scenario, target: AuditTarget, mem: AuditMemory): Observation {
  const rec = new StepRecorder();
  let failed: unknown = null;
  try {
    applySetup(target, s.setup);
    const body = target.native && s.nativeBody ? s.nativeBody : s.body;
    body(new ScenarioContext(target, rec, mem));
  } catch (e) {
    failed = e;
  }
  try {
    target.dispose();
  } catch (e) {
    failed ??= e;
  }
  if (failed) throw failed;
  return rec.observation();
}

const message = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/**
 * Runs the scenario on the backend, or gives its declared reason when it does not apply there (notApplicableOn;
 * the guest suites make no test of such a pair, and the collector records the reason).
 */
export function runScenario(s: Scenario, factory: BackendFactory, mem: AuditMemory): ScenarioRun {
  const na = notApplicableOn(s, factory.backend);
  if (na) return { result: { status: 'not-applicable', reason: na }, failure: null };
  return withEnvironment(s, () => {
    let kernel: Observation;
    try {
      kernel = observe(s, factory.kernel(), mem);
    } catch (e) {
      // A known finding would damage this process (lib/audit/targets.ts HeldBackByFinding): not run here.
      if (e instanceof HeldBackByFinding) return { result: { status: 'not-applicable', reason: `${HELD_BACK_BY_FINDING}${e.finding}: ${e.what}` }, failure: null };
      const refused = platformRefusal(s, factory, e, mem);
      if (refused) return refused;
      // A step with no native counterpart in a scenario declared to have a native equivalent: the declaration is wrong.
      const why = e instanceof NoNativeEquivalent
        ? `declared to have a native equivalent, but a step has none (declare it in lib/audit/scenarios.ts): ${e.message}`
        : `the kernel run failed: ${message(e)}`;
      return { result: { status: 'not-applicable', reason: `not run: ${why}` }, failure: `${s.id} on ${factory.backend}: ${why}\n${e instanceof Error ? e.stack : ''}` };
    }
    let model: Observation | { error: string };
    try {
      model = observe(s, factory.model(), mem);
    } catch (e) {
      model = { error: message(e) };
    }
    const result: BackendResult = { status: 'ran', kernel, model };
    if ('error' in model) return { result, failure: `${s.id} on ${factory.backend}: the model failed: ${model.error}` };
    const diffs = observationDifferences(kernel, model);
    return { result, failure: diffs.length > 0 ? divergenceReport(`${s.id} on ${factory.backend}`, kernel, model, diffs) : null };
  });
}

const EPERM = 1;

/**
 * A platform without isolated MSI refuses the device (EPERM: type1 at SET_IOMMU, iommufd at bind) unless the
 * backend's allow_unsafe_interrupts is set, so no scenario that needs the device attached gets past its setup
 * there. Such a scenario audits nothing on that platform; what the refusal itself does, step by step, is the
 * platform.msi-isolation scenario's (its setup is 'raw'). The cell is not applicable when, and only when, the
 * model refuses the same setup step with the same errno for the platform facts it read: a refusal the model
 * did not predict, or any other setup failure, fails the test as before.
 */
function platformRefusal(s: Scenario, factory: BackendFactory, e: unknown, mem: AuditMemory): ScenarioRun | null {
  const facts = factory.refusal?.() ?? null;
  if (!(e instanceof SetupError) || e.errno !== EPERM || facts === null) return null;
  let predicted: unknown = null;
  try {
    observe(s, factory.model(), mem);
  } catch (m) {
    predicted = m;
  }
  if (!(predicted instanceof SetupError) || predicted.step !== e.step || predicted.errno !== e.errno) return null;
  return {
    result: { status: 'not-applicable', reason: `${REFUSED_BY_PLATFORM}${e.step} fails with EPERM in setup '${s.setup}', as the model predicts (${facts})` },
    failure: null,
  };
}

/** What a native run of a scenario reaches, whatever it declares: every step expressed, or the first step that has no native counterpart. */
export type NativeDryRun = { expressible: true } | { expressible: false; reason: string };

/**
 * Runs the scenario on a native target (the model's: no kernel needed) regardless of its declaration, to
 * check the declaration: a step with no native counterpart throws NoNativeEquivalent in the scenario context
 * or the native target. Any other error is the model's and is thrown.
 */
export function nativeDryRun(s: Scenario, target: () => AuditTarget, mem: AuditMemory): NativeDryRun {
  try {
    observe(s, target(), mem);
    return { expressible: true };
  } catch (e) {
    if (e instanceof NoNativeEquivalent) return { expressible: false, reason: e.message };
    throw e;
  }
}

/** The raw file's entry of a scenario, with the results gathered so far (missing backends are left out). */
export function scenarioResult(s: Scenario, results: Partial<Record<BackendId, BackendResult>>): ScenarioResult {
  return {
    id: s.id,
    area: s.area,
    title: s.title,
    setup: SETUP_DESCRIPTIONS[s.setup],
    ...(s.platformDependent ? { platformDependent: s.platformDependent } : {}),
    results,
  };
}

/** Collects the results of one profile's audit suite and writes audit-raw.json. */
export class AuditRawCollector {
  readonly #results = new Map<string, Partial<Record<BackendId, BackendResult>>>();
  readonly backends: Partial<Record<BackendId, BackendAvailability>> = {};
  /** The profile's platform (AuditRaw.platform), once the suite has read it. */
  platform: AuditPlatform | null = null;

  constructor(
    readonly profile: AuditProfile,
    backends: readonly BackendId[],
  ) {
    for (const b of backends) this.backends[b] = { available: false, reason: 'the audit suite did not get to it' };
  }

  available(backend: BackendId): void {
    this.backends[backend] = { available: true };
  }

  /** `skipped`: the running kernel lacks what the backend needs (BackendAvailability.skipped). */
  unavailable(backend: BackendId, reason: string, skipped = false): void {
    this.backends[backend] = { available: false, reason, ...(skipped ? { skipped: true } : {}) };
  }

  add(scenarioId: string, backend: BackendId, result: BackendResult): void {
    const entry = this.#results.get(scenarioId) ?? {};
    entry[backend] = result;
    this.#results.set(scenarioId, entry);
  }

  /** The raw document: every catalogue scenario in order; a backend that has no result says why. */
  raw(): AuditRaw {
    const scenarios = CATALOGUE.map((s) => {
      const got = this.#results.get(s.id) ?? {};
      const results: Partial<Record<BackendId, BackendResult>> = {};
      for (const b of Object.keys(this.backends) as BackendId[]) {
        const avail = this.backends[b]!;
        // A declared not-applicable pair has no test: its reason is the scenario's, whatever the backend's state.
        const na = notApplicableOn(s, b);
        results[b] = got[b] ?? (na !== undefined ? { status: 'not-applicable', reason: na } : { status: 'not-applicable', reason: avail.available ? 'not run (filtered out, or its test did not finish)' : `backend ${avail.skipped ? 'skipped' : 'unavailable'}: ${avail.reason ?? 'unknown'}` });
      }
      return scenarioResult(s, results);
    });
    return { format: 1, profile: this.profile, ...(this.platform ? { platform: this.platform } : {}), kernel: kernelRelease(), behaviour: { ...kernelBehaviour(), ...type1Behaviour() }, backends: this.backends, scenarios };
  }

  /** Writes OUT/audit-raw.json; OUT is the profile's results folder (IOMMUFD_CONFORMANCE_OUT). */
  write(dir: string): string {
    mkdirSync(dir, { recursive: true });
    const path = join(dir, AUDIT_RAW_FILE);
    writeFileSync(path, `${JSON.stringify(this.raw(), null, 2)}\n`);
    return path;
  }
}

function kernelRelease(): string {
  try {
    return readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}
