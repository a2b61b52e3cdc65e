// The shape both profiles' audit suites share: one mocha test per catalogue
// scenario per backend (`audit.<backend>.<scenario-id>`), passing when the
// model predicted the kernel step for step; the raw matrix is written to the
// profile's results folder in after(), where the host's audit report reads it.
// A scenario declared not applicable on a backend (lib/audit/scenarios.ts
// notApplicableOn: no native equivalent, no group on the mock) is no test: it
// is not something the running kernel lacks, so it is no skip either. The
// raw file gives its reason, and the guest prints how many there are.
import { AuditRawCollector, runScenario, type BackendFactory } from '../../lib/audit/run.ts';
import { CATALOGUE, notApplicableOn } from '../../lib/audit/scenarios.ts';
import { freeAuditMemory, makeAuditMemory, type AuditMemory } from '../../lib/audit/targets.ts';
import { reportFinding } from './findings.ts';
import { HELD_BACK_BY_FINDING, REFUSED_BY_PLATFORM, type AuditPlatform, type AuditRaw, type BackendId } from '../../lib/audit/types.ts';
import { skipBecause } from './skip.ts';
import type { WhyNot } from '../../lib/audit/device-half.ts';

export type { WhyNot };

export interface AuditSuite<B extends BackendId> {
  profile: 'mock' | 'viommu';
  backends: readonly B[];
  /** Why no backend of this profile can run here, or null (runs in before()). */
  whyNot(): WhyNot;
  /** Why this one backend cannot run, when the others can (default: never). */
  whyNotBackend?(backend: B): WhyNot;
  factory(backend: B, mem: AuditMemory): BackendFactory;
  /** The platform the profile's device runs on, recorded in the raw file (after whyNot passed). */
  platform?(): AuditPlatform;
  /**
   * More tests inside the suite, after every backend's: they see the raw document as collected so far and
   * which scenario of which backend is decided here (its test ran, or it is declared not applicable; the
   * others were filtered out).
   */
  moreTests?(collected: { raw(): AuditRaw; ran(backend: B, scenarioId: string): boolean }): void;
}

export function auditSuite<B extends BackendId>(suite: AuditSuite<B>): void {
  const collector = new AuditRawCollector(suite.profile, suite.backends);
  const ran = new Set<string>();
  describe('audit', () => {
    let mem: AuditMemory | null = null;

    before(function () {
      const why = suite.whyNot();
      if (why) {
        const { reason, skipped } = typeof why === 'string' ? { reason: why, skipped: false } : { reason: why.kernelLacks, skipped: true };
        for (const b of suite.backends) collector.unavailable(b, reason, skipped);
        skipBecause(this, reason);
      }
      if (suite.platform) collector.platform = suite.platform();
      mem = makeAuditMemory();
    });

    after(() => {
      if (mem) freeAuditMemory(mem);
      const out = process.env.IOMMUFD_CONFORMANCE_OUT;
      if (out) collector.write(out);
    });

    for (const backend of suite.backends) {
      describe(backend, () => {
        let factory: BackendFactory;
        const notApplicable = CATALOGUE.filter((s) => notApplicableOn(s, backend) !== undefined).length;
        before(function () {
          const why = suite.whyNotBackend?.(backend) ?? null;
          if (why) {
            const { reason, skipped } = typeof why === 'string' ? { reason: why, skipped: false } : { reason: why.kernelLacks, skipped: true };
            collector.unavailable(backend, reason, skipped);
            skipBecause(this, reason);
          }
          collector.available(backend);
          factory = suite.factory(backend, mem!);
          if (notApplicable > 0) console.log(`      # audit.${backend}: ${notApplicable} of ${CATALOGUE.length} scenarios not applicable (declared in lib/audit/scenarios.ts; no test, the audit report gives each reason)`);
        });

        for (const s of CATALOGUE) {
          if (notApplicableOn(s, backend) !== undefined) continue;
          it(s.id, function () {
            const run = runScenario(s, factory, mem!);
            collector.add(s.id, backend, run.result);
            ran.add(`${backend} ${s.id}`);
            if (run.failure) throw new Error(run.failure);
            // The platform refused the device in the setup, as the model predicted: the scenario audited nothing.
            if (run.result.status === 'not-applicable' && run.result.reason.startsWith(REFUSED_BY_PLATFORM)) skipBecause(this, run.result.reason);
            // A known kernel finding held the kernel run back (it would damage this process for good): say so, skip.
            if (run.result.status === 'not-applicable' && run.result.reason.startsWith(HELD_BACK_BY_FINDING)) {
              const [id] = run.result.reason.slice(HELD_BACK_BY_FINDING.length).split(':');
              reportFinding(id!, `${s.id} on ${backend}: not run`);
              skipBecause(this, run.result.reason);
            }
          });
        }
      });
    }

    // A declared not-applicable pair is decided without a test: its cell is the declaration's, always.
    const decided = (backend: B, id: string) => ran.has(`${backend} ${id}`) || notApplicableOn(CATALOGUE.find((s) => s.id === id)!, backend) !== undefined;
    suite.moreTests?.({ raw: () => collector.raw(), ran: decided });
  });
}
