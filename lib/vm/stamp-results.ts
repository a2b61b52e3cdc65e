// Every result file of a VM run names the kernel it ran on: the Debian
// package and its exact version (or the user tree with its git state, or the
// bzImage), the kernel version and the flavour. The guest's reporter writes
// the files; the host stamps them afterwards, so a file copied elsewhere
// still says what it is a result of.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GuestKernel } from './kernel.ts';

export interface KernelRecord {
  source: string;
  version: string;
  flavour: string | null;
  package?: string;
  packageVersion?: string;
  image: string;
  buildSeconds: number;
  cached: boolean;
}

export function kernelRecord(k: GuestKernel): KernelRecord {
  return {
    source: k.source,
    version: k.version,
    flavour: k.flavour,
    ...(k.origin.kind === 'debian' ? { package: k.origin.package, packageVersion: k.origin.packageVersion } : {}),
    image: k.image,
    buildSeconds: k.buildSeconds,
    cached: k.cached,
  };
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/--/g, '- -');
}

/** Adds the kernel to each result file in `dir` that exists (JSON: a `kernel` field; text: a comment line). */
export function stampKernel(dir: string, kernel: GuestKernel): void {
  const record = kernelRecord(kernel);
  const line = `kernel: ${record.source}, Linux ${record.version}${record.flavour ? ` (${record.flavour})` : ''}`;
  const edit = (name: string, f: (text: string) => string) => {
    const file = join(dir, name);
    if (existsSync(file)) writeFileSync(file, f(readFileSync(file, 'utf8')));
  };
  for (const name of ['results.json', 'timing.json', 'audit-raw.json']) {
    edit(name, (text) => {
      try {
        const value = JSON.parse(text);
        if (value === null || typeof value !== 'object' || Array.isArray(value)) return text;
        return `${JSON.stringify({ guestKernel: record, ...value }, null, 2)}\n`;
      } catch {
        return text; // a half-written file stays as it is: the run reports it
      }
    });
  }
  // KTAP and TAP: a diagnostic line right after the version line.
  for (const name of ['results.ktap', 'results.tap']) {
    edit(name, (text) => {
      const lines = text.split('\n');
      const at = /^(KTAP|TAP) version/.test(lines[0] ?? '') ? 1 : 0;
      lines.splice(at, 0, `# ${line}`);
      return lines.join('\n');
    });
  }
  edit('results.xml', (text) => {
    const comment = `<!-- ${xmlEscape(line)} -->`;
    return text.startsWith('<?xml') ? text.replace(/\?>\s*/, (m) => `${m.trimEnd()}\n${comment}\n`) : `${comment}\n${text}`;
  });
}
