// Kernel reports that fail a run even when every test passed: a kernel that
// WARNed or leaked under a test is a finding, not noise. The whole log is
// scanned at the end of a VM run (lib/vm/qemu.ts); the new records are also
// read after every test (kernelLogRootHooks), so a report fails the test
// during which it appeared, by name.
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

/**
 * Each problem found, as its kind and the first log line that shows it (with a little context). A report
 * seen twice (on the console and in dmesg, or quoted in a test's failure message) is counted once: lines
 * are compared from where the pattern matched, without the timestamp or whatever quotes them.
 */
export function kernelProblems(log: string): string[] {
  const lines = log.split('\n');
  const found: string[] = [];
  const seen = new Set<number>();
  const reports = new Set<string>();
  lines.forEach((line, i) => {
    for (const { name, re } of PROBLEM_PATTERNS) {
      const m = re.exec(line);
      if (!m || seen.has(i)) continue;
      seen.add(i);
      const report = `${name}: ${line.slice(m.index).trim()}`;
      if (reports.has(report)) continue;
      reports.add(report);
      found.push(`${name}: ${lines.slice(i, i + 12).join('\n    ')}`);
    }
  });
  return found;
}

/**
 * New records of /dev/kmsg since the last read (each read() of /dev/kmsg
 * returns one record; non-blocking, EAGAIN when there are no more, so a read
 * with nothing new costs one system call). The VM runner scans the whole log
 * at the end of the run; this names the test (kernelLogRootHooks) and, in
 * the fail_nth suite, the nth that caused a splat.
 */
export class KernelLogTail {
  readonly #fd: number;
  readonly #record = Buffer.alloc(16384);

  private constructor(fd: number) {
    this.#fd = fd;
    this.read();
  }

  /** Opens /dev/kmsg (or a file of records in its format, for tests) after what is in it now; null where it cannot be read. */
  static open(path = '/dev/kmsg'): KernelLogTail | null {
    try {
      return new KernelLogTail(openSync(path, constants.O_RDONLY | constants.O_NONBLOCK));
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
      // "prefix;message\n" with continuation lines " KEY=value\n" after it;
      // one record a read from /dev/kmsg, maybe several from a file.
      for (const line of this.#record.toString('utf8', 0, n).split('\n')) {
        if (line === '' || line.startsWith(' ')) continue;
        out.push(line.slice(line.indexOf(';') + 1));
      }
    }
  }

  close(): void {
    closeSync(this.#fd);
  }
}


/** The mocha root hooks of kernelLogRootHooks (Mocha#rootHooks takes them). */
export interface KernelLogHooks {
  beforeAll(this: Mocha.Context): void;
  afterEach(this: Mocha.Context): void;
  afterAll(this: Mocha.Context): void;
}

/**
 * Root hooks that read the kernel log's new records after every test: a
 * panic, oops, WARN, BUG, KASAN, UBSAN or lockdep report fails the test
 * during which it appeared (its set-up, body or teardown: a root afterEach
 * runs after every suite's own afterEach), with the report in the failure.
 * The test is failed through its hook's error (Hook#error: mocha fails the
 * current test with it, as it does for --check-leaks), so the remaining tests
 * still run. What appears in an after() hook is charged to the last test.
 * `onUnavailable` hears once why the log cannot be read (not root, no /dev/kmsg).
 * `known` names the known kernel finding a report is (lib/vm/findings.ts), or
 * null: a known finding is printed under its name and fails nothing (its own
 * test checks that it still reproduces).
 */
export function kernelLogRootHooks(onUnavailable: (why: string) => void, path = '/dev/kmsg', known: (problem: string) => string | null = () => null): KernelLogHooks {
  let tail: KernelLogTail | null = null;
  const check = (ctx: Mocha.Context) => {
    const records = tail?.read() ?? [];
    if (records.length === 0) return;
    const problems = kernelProblems(records.join('\n')).filter((p) => {
      const name = known(p);
      // Named, not quoted: the console is scanned for kernel reports too, and a quote would count twice.
      if (name) process.stdout.write(`kernel log: known finding ${name} during ${ctx.currentTest?.fullTitle() ?? 'a hook'}\n`);
      return !name;
    });
    if (problems.length === 0) return;
    const test = ctx.currentTest;
    const report = `the kernel logged ${problems.length} problem(s) during this test:\n${problems.join('\n')}`;
    if (test && test.state === 'failed') {
      // Already failed for its own reason: say it, do not fail it twice.
      process.stdout.write(`kernel log: during ${test.fullTitle()}: ${report}\n`);
      return;
    }
    (ctx.test as Mocha.Hook).error(new Error(report));
  };
  return {
    beforeAll() {
      tail = KernelLogTail.open(path);
      if (!tail) onUnavailable(`${path} cannot be opened (not root, or no ${path})`);
    },
    afterEach() {
      check(this);
    },
    afterAll() {
      check(this);
      tail?.close();
      tail = null;
    },
  };
}
