// `iommufd-conformance audit --host --device BDF`: the audit's device half
// (type1, compat-device, native) on this host, no VM, in this process: every
// catalogue scenario on the kernel and on the model, compared step by step as
// the viommu guest's audit suite does (lib/audit/run.ts runScenario), against
// a device the user has bound to vfio-pci. It checks the host first
// (lib/audit/host-device.ts) and refuses, writing nothing, when it cannot run;
// it never binds or unbinds a device. Writes OUT/host/audit-raw.json (with the
// host's kernel, platform and device) and OUT/audit/audit.{md,json,html}.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEVICE_BACKENDS, deviceBackendWhyNot, deviceHalfFactory, prepareDeviceHalf } from '../audit/device-half.ts';
import { checkHostDevice, HostDeviceError, readHostFacts, type HostCheckOptions } from '../audit/host-device.ts';
import { AuditRawCollector, runScenario } from '../audit/run.ts';
import { CATALOGUE } from '../audit/scenarios.ts';
import { freeAuditMemory, makeAuditMemory } from '../audit/targets.ts';
import { AUDIT_RAW_FILE } from '../audit/types.ts';
import { auditFromFolders, writeAuditReports } from '../audit/write.ts';
import { DEVICE_ENV } from '../kernel/device-choice.ts';
import { classifyProblems, loadFindings } from '../vm/findings.ts';
import { KernelLogTail, kernelProblems } from '../vm/kernel-log.ts';
import { auditSummary, checkAuditPage } from './audit.ts';
import { EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_PASS } from './exit-codes.ts';

/** Where a host audit writes its raw file, under --out (`audit --raw OUT/host` renders it again). */
export const HOST_RAW_DIR = 'host';

export interface HostAuditOptions {
  /** The device's PCI address (a malformed one throws a RangeError). */
  device: string;
  out: string;
  knownPath?: string;
  /** For the unit suite: a fake sysfs root, uid and group opener (lib/audit/host-device.ts). */
  checks?: HostCheckOptions;
  write?: (line: string) => void;
}

export async function runHostAudit(o: HostAuditOptions): Promise<number> {
  const say = o.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  let device;
  try {
    device = checkHostDevice(o.device, o.checks);
  } catch (e) {
    // A malformed address is a RangeError: the command line turns it into a usage error before calling.
    if (e instanceof HostDeviceError) {
      say(`audit --host: ${e.message}\naudit --host: nothing was run or written`);
      return EXIT_ENVIRONMENT;
    }
    throw e;
  }
  // The probes that borrow a VFIO group or cdev (lib/kernel/features.ts) borrow only this device's.
  process.env[DEVICE_ENV] = device.bdf;
  const prepared = prepareDeviceHalf({ bdf: device.bdf, named: true });
  if ('why' in prepared) {
    say(`audit --host: cannot audit ${device.bdf}: ${typeof prepared.why === 'string' ? prepared.why : prepared.why.kernelLacks}\naudit --host: nothing was run or written`);
    return EXIT_ENVIRONMENT;
  }
  const env = prepared.env;
  const root = resolve(o.out);
  const rawDir = join(root, HOST_RAW_DIR);
  const reportDir = join(root, 'audit');
  // A run that fails half-way must not leave an earlier run's raw file or reports to be read as this one's.
  rmSync(join(rawDir, AUDIT_RAW_FILE), { force: true });
  for (const f of ['audit.md', 'audit.json', 'audit.html']) rmSync(join(reportDir, f), { force: true });

  say(`audit --host: device ${device.bdf} (IOMMU group ${device.groupId}, ${device.iommuUnit}) on this host; ${CATALOGUE.length} scenarios x ${DEVICE_BACKENDS.join(', ')}, each on the kernel and on the model`);
  const collector = new AuditRawCollector('viommu', DEVICE_BACKENDS);
  const problems: string[] = [];
  const findings = loadFindings();
  const log = KernelLogTail.open();
  if (!log) say('audit --host: the kernel log (/dev/kmsg) cannot be read: WARNs and BUGs during the run are not checked');
  const mem = makeAuditMemory();
  try {
    for (const backend of DEVICE_BACKENDS) {
      const why = deviceBackendWhyNot(backend, env);
      if (why) {
        const { reason, skipped } = typeof why === 'string' ? { reason: why, skipped: false } : { reason: why.kernelLacks, skipped: true };
        collector.unavailable(backend, reason, skipped);
        say(`audit --host: ${backend}: ${skipped ? 'skipped' : 'unavailable'}: ${reason}`);
        continue;
      }
      collector.available(backend);
      const factory = deviceHalfFactory(backend, env, mem);
      const t0 = Date.now();
      const counts = { ran: 0, notApplicable: 0, failed: 0 };
      for (const s of CATALOGUE) {
        const run = runScenario(s, factory, mem);
        collector.add(s.id, backend, run.result);
        if (run.result.status === 'ran') counts.ran++;
        else counts.notApplicable++;
        if (run.failure) {
          counts.failed++;
          problems.push(run.failure.split('\n')[0]!);
          say(`audit --host: FAIL: ${run.failure}`);
        }
        const { known, unknown } = classifyProblems(kernelProblems((log?.read() ?? []).join('\n')), findings);
        for (const k of known) say(`audit --host: known kernel finding ${k.finding.id} (${k.finding.doc}) during ${s.id} on ${backend}`);
        for (const p of unknown) problems.push(`the kernel logged a problem during ${s.id} on ${backend}: ${p}`);
      }
      say(`audit --host: ${backend}: ${counts.ran} ran, ${counts.notApplicable} not applicable, ${counts.failed} failed (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }
  } finally {
    freeAuditMemory(mem);
    log?.close();
  }
  const raw = { ...collector.raw(), host: readHostFacts(device, env.platform) };
  mkdirSync(rawDir, { recursive: true });
  writeFileSync(join(rawDir, AUDIT_RAW_FILE), `${JSON.stringify(raw, null, 2)}\n`);
  const audit = auditFromFolders({ rawDirs: [rawDir], problems, ...(o.knownPath ? { knownPath: o.knownPath } : {}) });
  const files = writeAuditReports(audit, reportDir);
  const page = checkAuditPage(audit, files);
  say([`audit --host: raw results: ${join(rawDir, AUDIT_RAW_FILE)}; kernel ${raw.host.kernel}`, ...page.lines, ...auditSummary(audit, files)].join('\n'));
  return audit.verdict.ok && page.failures === 0 ? EXIT_PASS : EXIT_FAILED;
}
