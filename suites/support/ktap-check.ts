// Reads a KTAP file with two independent parsers, for the tests of merged
// output: the kernel's own (tools/testing/kunit/kunit_parser.py, the KTAP
// parser of kunit.py, from the kernel tree the project builds) and tap-parser
// (npm), level by level: KTAP says its output should also be valid TAP, and
// each nested level, taken out of its two-space indentation, is a TAP
// document of its own.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Parser } from 'tap-parser';

export interface KunitTree {
  name: string;
  status: string;
  expected: number | null;
  errors: number;
  log: string[];
  subtests: KunitTree[];
}

const KUNIT_SCRIPT = `
import sys, io, json
sys.path.insert(0, sys.argv[1])
import kunit_printer, kunit_parser
kunit_parser.stdout = kunit_printer.Printer(io.StringIO())
t = kunit_parser.parse_run_tests(open(sys.argv[2]).read().splitlines())
def tree(t):
    return {'name': t.name, 'status': t.status.name, 'expected': t.expected_count, 'errors': t.counts.errors, 'log': list(t.log), 'subtests': [tree(s) for s in t.subtests]}
print(json.dumps(tree(t)))
`;

/** The tree kunit_parser.py of `kernelDir` reads from the KTAP file. */
export function parseWithKunit(kernelDir: string, ktapFile: string): KunitTree {
  const r = spawnSync('python3', ['-c', KUNIT_SCRIPT, join(kernelDir, 'tools/testing/kunit'), ktapFile], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error || r.status !== 0) throw new Error(`kunit_parser.py failed (exit ${r.status}): ${r.error?.message ?? r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout) as KunitTree;
}

export interface TapLevel {
  plan: { start: number; end: number } | null;
  asserts: { id: number; name: string; ok: boolean; skip: string | boolean }[];
  /** Lines tap-parser did not take as TAP (the KTAP version line; nested blocks at the level above). */
  extra: string[];
  ok: boolean;
  failures: unknown[];
}

/** Parses one level of TAP (non-strict: KTAP's version line is not TAP's) and returns what tap-parser saw. */
export function parseTapLevel(text: string): TapLevel {
  const level: TapLevel = { plan: null, asserts: [], extra: [], ok: false, failures: [] };
  const p = new Parser((results) => {
    level.ok = results.ok;
    const { start, end } = results.plan;
    level.plan = start === null || end === null || start === undefined || end === undefined ? null : { start, end };
    level.failures = results.failures.filter((f) => (f as { tapError?: string }).tapError);
  });
  p.on('assert', (a: { id: number; name: string; ok: boolean; skip: string | boolean }) => level.asserts.push({ id: a.id, name: a.name, ok: a.ok, skip: a.skip }));
  p.on('extra', (e: string) => level.extra.push(e.replace(/\n$/, '')));
  p.end(text);
  return level;
}

/** The nested blocks of a KTAP level: consecutive lines indented by two spaces, de-indented. */
export function nestedBlocks(text: string): string[] {
  const blocks: string[][] = [];
  let current: string[] | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('  ')) {
      if (!current) blocks.push((current = []));
      current.push(line.slice(2));
    } else current = null;
  }
  return blocks.map((b) => `${b.join('\n')}\n`);
}
