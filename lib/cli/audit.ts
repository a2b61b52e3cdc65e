// `iommufd-conformance audit`: boots the viommu and mock guests running only
// the audit suites (or, with --raw, reads raw results already written), then
// writes audit.md, audit.json and audit.html to OUT/audit/ and fails on an
// unexplained, changed or stale difference, a model mismatch, or a backend
// that did not run. Also the audit step of `npm test`.
import { rmSync } from 'node:fs';
import type { KernelSeries } from '../kbuild/series.ts';
import { join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { chromiumMissing, pageProblems, probeAuditPage, probePage } from '../audit/browser.ts';
import { AUDIT_PROFILES, summaryLines, type Audit } from '../audit/report.ts';
import { AUDIT_RAW_FILE } from '../audit/types.ts';
import { auditFromFolders, writeAuditReports, type AuditFiles } from '../audit/write.ts';
import { checkPublished, publishAudit, PUBLISHED_AUDIT_DIR } from '../audit/published.ts';
import { publishedPageProblems } from '../audit/render-published.ts';
import { shardLabel, type Shard } from '../shard.ts';
import type { KernelFlavour } from '../vm/kernel.ts';
import type { DeviceProfile as AuditDeviceProfile } from '../vm/profiles.ts';
import { EXIT_ENVIRONMENT, vmExitCode } from './exit-codes.ts';

/** The guest's --grep: the audit suites' titles start with "audit". */
export const AUDIT_GREP = '^audit';

export interface AuditCommandOptions {
  out: string;
  /** Render these raw folders instead of running the guests. */
  rawDirs: string[];
  /** The known-differences table; default fixtures/audit/known-differences.json. */
  knownPath?: string;
  kernel?: string;
  kernelVersion?: KernelSeries;
  kernelSrc?: string;
  flavour: KernelFlavour;
  accel: 'auto' | 'kvm' | 'tcg';
  timeoutSeconds: number;
  /** Run only this shard of the audit's tests in each guest; the verdict then needs every shard (`merge`). */
  shard?: Shard | null;
  /** Add or replace this kernel's part of docs/audit/ when the audit passed. */
  publish?: boolean;
  /**
   * Fail (exit 1) when the published part of this run's kernel and platform differs from the run or was never
   * published (npm test); otherwise the comparison is printed only.
   */
  publishedMustMatch?: boolean;
  /** The device profile booted beside mock (default viommu): the platform the device backends run on. */
  deviceProfile?: AuditDeviceProfile;
}

/** A raw file from an earlier run must not pass for this one's (runInVm clears only mocha's results). */
export function removeStaleAuditRaw(resultsRoot: string, device: AuditDeviceProfile = 'viommu'): void {
  for (const p of new Set([...AUDIT_PROFILES, device])) rmSync(join(resultsRoot, p, AUDIT_RAW_FILE), { force: true });
}

export function auditSummary(audit: Audit, files: AuditFiles, maxFailures = 20): string[] {
  const v = audit.verdict;
  const lines = [...summaryLines(audit)];
  for (const f of v.failures.slice(0, maxFailures)) lines.push(`audit: FAIL: ${f}`);
  if (v.failures.length > maxFailures) lines.push(`audit: ... and ${v.failures.length - maxFailures} more (see ${files.markdown})`);
  lines.push(`audit: ${v.ok ? 'PASSED' : 'FAILED'}; reports: ${files.markdown}, ${files.json}, ${files.html}`);
  return lines;
}

/**
 * Chromium ran but gave no answer (a timeout under a slow guest, a crash): the page was not checked, which
 * is said, and is a failure where a missing Chromium is one (CI), not an exception that ends the command.
 */
function pageNotChecked(what: string, e: unknown): { lines: string[]; failures: number } {
  const why = e instanceof Error ? e.message : String(e);
  if (process.env.CI === 'true') return { lines: [`${what}: FAILED: not checked, Chromium gave no answer: ${why}`], failures: 1 };
  return { lines: [`${what}: not checked: Chromium gave no answer: ${why}`], failures: 0 };
}

/**
 * Loads the written audit.html in headless Chromium and checks it against the audit: every scenario shown,
 * every difference marked and linked to its explanation. Without Chromium it says so (in CI that fails).
 */
export function checkAuditPage(audit: Audit, files: AuditFiles): { lines: string[]; failures: number } {
  const missing = chromiumMissing();
  if (missing) {
    if (process.env.CI === 'true') return { lines: [`audit page: FAILED: cannot be checked in CI: ${missing}`], failures: 1 };
    return { lines: [`audit page: not checked in Chromium: ${missing}`], failures: 0 };
  }
  let problems: string[];
  try {
    problems = pageProblems(probeAuditPage(readFileSync(files.html, 'utf8')), audit);
  } catch (e) {
    return pageNotChecked('audit page', e);
  }
  if (problems.length === 0) return { lines: [`audit page: checked in headless Chromium: ${audit.rows.length} scenario rows, every difference marked and linked`], failures: 0 };
  return { lines: problems.map((p) => `audit page: FAIL: ${p}`), failures: problems.length };
}

/** docs/audit/audit.html (every part side by side) in headless Chromium, as checkAuditPage checks a run's page. */
export function checkPublishedPage(dir = PUBLISHED_AUDIT_DIR): { lines: string[]; failures: number } {
  const missing = chromiumMissing();
  if (missing) {
    if (process.env.CI === 'true') return { lines: [`published page: FAILED: cannot be checked in CI: ${missing}`], failures: 1 };
    return { lines: [`published page: not checked in Chromium: ${missing}`], failures: 0 };
  }
  let problems: string[];
  try {
    problems = publishedPageProblems(readFileSync(join(dir, 'audit.html'), 'utf8'), dir, probePage);
  } catch (e) {
    return pageNotChecked('published page', e);
  }
  if (problems.length === 0) return { lines: [`published page: ${join(dir, 'audit.html')} checked in headless Chromium: every scenario row and cell of every part, every difference between modes marked and linked to its explanation, every difference between parts marked, the filters, every link resolves`], failures: 0 };
  return { lines: problems.map((p) => `published page: FAIL: ${p}`), failures: problems.length };
}

export async function runAuditCommand(o: AuditCommandOptions): Promise<number> {
  return (await runAudit(o)).rc;
}

/** runAuditCommand, with what the comparison with docs/audit/ found (none when publishing). */
export async function runAudit(o: AuditCommandOptions): Promise<{ rc: number; published?: { lines: string[]; failures: number } }> {
  const root = resolve(o.out);
  const device = o.deviceProfile ?? 'viommu';
  const problems: string[] = [];
  let rawDirs = o.rawDirs;
  let infrastructure = false;
  if (rawDirs.length === 0) {
    removeStaleAuditRaw(root, device);
    const { runInVm } = await import('../vm/run-vm.ts');
    const { outcomes } = await runInVm({
      // Order matches the report's columns: type1 and compat-device (viommu) before compat-mock (mock).
      profiles: [device, 'mock'],
      out: root,
      flavour: o.flavour,
      kernel: o.kernel,
      kernelVersion: o.kernelVersion,
      kernelSrc: o.kernelSrc,
      accel: o.accel,
      timeoutSeconds: o.timeoutSeconds,
      runArgs: ['--grep', AUDIT_GREP],
      shard: o.shard ?? null,
    });
    for (const oc of outcomes) if (!oc.ok) problems.push(`the ${oc.profile} guest failed: ${oc.reasons.join('; ')}`);
    infrastructure = vmExitCode(outcomes.map((outcome) => ({ outcome, resultsDir: join(root, outcome.profile) }))) === EXIT_ENVIRONMENT;
    if (o.shard) {
      // One shard's raw files hold only its scenarios: a verdict on them would report the rest as missing.
      process.stdout.write(
        `audit shard ${shardLabel(o.shard)}: ${problems.length === 0 ? 'ran' : `FAILED: ${problems.join('; ')}`}; results in ${root}/<profile>/ ` +
          `(the audit verdict needs every shard: \`iommufd-conformance merge SHARD_DIR... --out DIR\` joins them and builds it)\n`,
      );
      if (infrastructure) return { rc: EXIT_ENVIRONMENT };
      return { rc: problems.length === 0 ? 0 : 1 };
    }
    rawDirs = device === 'viommu' ? [root] : [join(root, device), join(root, 'mock')];
  }
  const audit = auditFromFolders({ rawDirs, problems, ...(o.knownPath ? { knownPath: o.knownPath } : {}) });
  const files = writeAuditReports(audit, join(root, 'audit'));
  const page = checkAuditPage(audit, files);
  process.stdout.write(`${[...page.lines, ...auditSummary(audit, files)].join('\n')}\n`);
  const passed = audit.verdict.ok && page.failures === 0;
  let published: { lines: string[]; failures: number } | undefined;
  if (o.publish) {
    // Only a passing audit is published: docs/audit/ is what VMM authors read. Its part is its kernel's and
    // platform's (docs/audit/KERNEL/PLATFORM/), the others are kept.
    if (audit.host) process.stdout.write(`audit: NOT published: a host audit (audit --host, ${audit.host.device.bdf} on ${audit.host.kernel}) is not the VM audit docs/audit/ holds; docs/audit/ is unchanged\n`);
    else if (passed && !infrastructure) {
      process.stdout.write(`audit: published: ${publishAudit(files).join(', ')}\n`);
      const index = checkPublishedPage();
      process.stdout.write(`${index.lines.join('\n')}\n`);
      if (index.failures > 0) return { rc: 1 };
    }
    else process.stdout.write('audit: NOT published: the audit did not pass; docs/audit/ is unchanged\n');
  } else {
    published = checkPublished(files.json, PUBLISHED_AUDIT_DIR, publishCommand(rawDirs));
    // Printed as news by `audit`; a failure only where the caller holds the published part to this run (npm test).
    const lines = o.publishedMustMatch ? published.lines : published.lines.map((l) => l.replace(': FAILED:', ':'));
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (infrastructure) return { rc: EXIT_ENVIRONMENT, ...(published ? { published } : {}) };
  const rc = passed && (!o.publishedMustMatch || (published?.failures ?? 0) === 0) ? 0 : 1;
  return { rc, ...(published ? { published } : {}) };
}

/** The command that publishes the audit of these raw folders. */
function publishCommand(rawDirs: string[]): string {
  return `\`npx iommufd-conformance audit ${rawDirs.map((d) => `--raw ${resolve(d)}`).join(' ')} --publish\``;
}

/**
 * The audit step of `npm test`, after the VM suites ran (they include the audit suites): the reports from
 * OUT/vm/<profile>/audit-raw.json into OUT/audit/. Returns the summary lines and how many failures it adds.
 */
export function auditAfterVmRun(root: string): { lines: string[]; failures: number } {
  const audit = auditFromFolders({ rawDirs: [join(root, 'vm')] });
  const files = writeAuditReports(audit, join(root, 'audit'));
  const page = checkAuditPage(audit, files);
  const lines = [...page.lines, ...auditSummary(audit, files, 10)];
  process.stdout.write(`\n=== audit: type1 against iommufd compat, compat against native\n${lines.join('\n')}\n`);
  const published = checkPublished(files.json, PUBLISHED_AUDIT_DIR, publishCommand([join(root, 'vm')]));
  process.stdout.write(`${published.lines.join('\n')}\n`);
  const v = audit.verdict;
  const c = v.comparisons;
  const line =
    `audit: ${v.ok ? 'passed' : 'FAILED'}: ${v.scenarios} scenarios, differences ${c.explained} explained, ${c.unexplained} unexplained, ` +
    `${c.changed} changed, ${c.stale} stale, ${v.modelMismatches.length} model mismatch(es), ${v.problems.length} problem(s) (${files.html})`;
  return {
    lines: [line, ...page.lines.filter((l) => l.includes('FAIL') || l.includes('not checked')), ...published.lines.slice(-1)],
    failures: v.failures.length + page.failures + published.failures,
  };
}
