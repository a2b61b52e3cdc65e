// Kernel reports that fail a run even when every test passed: a kernel that
// WARNed or leaked under a test is a finding, not noise.

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
  { name: 'WARN', re: /WARNING: CPU: \d+ PID: \d+|------------\[ cut here \]------------/ },
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
