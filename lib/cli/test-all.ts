// `npm test`: the unit suites on this host, then the VM suites in every
// profile. Outside CI, a host that cannot run the VM (no QEMU, no kernel
// source and not root to install it, no build tools) skips the VM part with
// the reason, counted; with CI=true the VM part is mandatory.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SetupError } from '../kbuild/source.ts';
import { PROFILES } from '../vm/profiles.ts';
import { runSuites, testFilesIn } from './run.ts';

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

function countsOf(resultsJson: string): Counts | null {
  if (!existsSync(resultsJson)) return null;
  const s = JSON.parse(readFileSync(resultsJson, 'utf8')).stats;
  return { passed: s.passes, failed: s.failures, skipped: s.pending };
}

export async function testAll(out: string): Promise<number> {
  const root = resolve(out);
  const total: Counts = { passed: 0, failed: 0, skipped: 0 };
  const add = (c: Counts | null) => {
    if (!c) return;
    total.passed += c.passed;
    total.failed += c.failed;
    total.skipped += c.skipped;
  };
  const lines: string[] = [];

  process.stdout.write('=== unit suites (this host)\n');
  const unitFailures = await runSuites({ files: testFilesIn('suites/unit'), out: join(root, 'unit') });
  add(countsOf(join(root, 'unit', 'results.json')));
  lines.push(`unit: ${unitFailures === 0 ? 'passed' : `${unitFailures} failed`}`);

  process.stdout.write('\n=== VM suites (QEMU guests)\n');
  const ci = process.env.CI === 'true';
  let vmOk = true;
  try {
    const { runInVm } = await import('../vm/run-vm.ts');
    const { ok, outcomes } = await runInVm({
      profiles: [...PROFILES],
      out: join(root, 'vm'),
      flavour: 'base',
      accel: 'auto',
      timeoutSeconds: 1800,
    });
    vmOk = ok;
    for (const o of outcomes) {
      const c = countsOf(join(root, 'vm', o.profile, 'results.json'));
      add(c);
      if (!o.ok) {
        // A guest that failed outside mocha (crash, kernel WARN) is a failure of its own.
        total.failed += 1;
      }
      lines.push(`vm ${o.profile}: ${o.ok ? 'passed' : `FAILED (${o.reasons.join('; ')})`}`);
    }
  } catch (err) {
    if (err instanceof SetupError && !ci) {
      const reason = err.message.split('\n')[0];
      lines.push(`vm: skipped: ${reason} (${err.fix})`);
      total.skipped += PROFILES.length;
    } else {
      vmOk = false;
      total.failed += 1;
      lines.push(`vm: FAILED: ${(err as Error).message}`);
    }
  }
  process.stdout.write(`\n=== npm test\n${lines.map((l) => `  ${l}`).join('\n')}\n`);
  process.stdout.write(`summary: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped\n`);
  return unitFailures === 0 && vmOk ? 0 : 1;
}
