// Kernel reports that fail a run even when every test passed: a kernel that
// WARNed or leaked under a test is a finding, not noise.
import { closeSync, constants, openSync, readSync } from 'node:fs';

// Most specific first: a line is reported once, under the first kind it
// matches ("BUG: KASAN: ..." is a KASAN report, "WARNING: possible circular
// locking" a lockdep one).
const PROBLEM_PATTERNS: { name: string; re: RegExp }[] = [
  { name: 'panic', re: /Kernel panic - not syncing/ },
  { name: 'KASAN', re: /KASAN: / },
  { name: 'UBSAN', re: /UBSAN: / },
  { name: 'lockdep', re: /possible (recursive|circular) locking|inconsistent lock state|suspicious RCU usage|WARNING: possible/ },
  { name: 'hung task', re: /blocked for more than \d+ seconds/ },
  { name: 'oops', re: /\bOops\b|general protection fault/ },
  { name: 'BUG', re: /\bBUG: |kernel BUG at/ },
  // "WARNING: CPU: 0 PID: 1 at FILE:LINE FUNC" until 6.x; "WARNING: FILE:LINE at FUNC, CPU#0: COMM/PID" in 7.x (kernel/panic.c:__warn).
  { name: 'WARN', re: /WARNING: CPU: \d+ PID: \d+|WARNING: (\S+:\d+ )?at \S+, CPU#\d+|------------\[ cut here \]------------/ },
];

/** Each problem found, as its kind and the first log line that shows it (with a little context). */
export function kernelProblems(log: string): string[] {
  const lines = log.split('\n');
  const found: string[] = [];
  const seen = new Set<number>();
  lines.forEach((line, i) => {
    for (const { name, re } of PROBLEM_PATTERNS) {
      if (re.test(line) && !seen.has(i)) {
        seen.add(i);
        found.push(`${name}: ${lines.slice(i, i + 12).join('\n    ')}`);
      }
    }
  });
  return found;
}

/**
 * New records of /dev/kmsg since the last read (each read() of /dev/kmsg
 * returns one record; non-blocking, EAGAIN when there are no more). The VM
 * runner scans the whole log at the end of the run; this names the test and
 * the nth that caused a splat.
 */
export class KernelLogTail {
  readonly #fd: number;
  readonly #record = Buffer.alloc(16384);

  private constructor(fd: number) {
    this.#fd = fd;
    this.read();
  }

  /** Opens /dev/kmsg after what is in it now; null where it cannot be read. */
  static open(): KernelLogTail | null {
    try {
      return new KernelLogTail(openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK));
    } catch {
      return null;
    }
  }

  /** The message text of each record logged since the last call. */
  read(): string[] {
    const out: string[] = [];
    for (;;) {
      let n: number;
      try {
        n = readSync(this.#fd, this.#record, 0, this.#record.length, null);
      } catch (e) {
        // EPIPE: records were overwritten before being read; reading goes on from the oldest left.
        if ((e as NodeJS.ErrnoException).code === 'EPIPE') continue;
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return out;
        throw e;
      }
      if (n <= 0) return out;
      const text = this.#record.toString('utf8', 0, n);
      // "prefix;message\n" with continuation lines " KEY=value\n" after it.
      out.push(text.slice(text.indexOf(';') + 1).split('\n')[0]!);
    }
  }

  close(): void {
    closeSync(this.#fd);
  }
}
