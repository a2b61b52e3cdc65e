// Known kernel findings (fixtures/findings.json, one docs/findings/<ID>.md
// each): a WARN, BUG or wrong result the suites provoke in the kernel from
// user space. A kernel report that matches a finding's signature is that
// finding, reported under its id, and does not fail the run as an unknown
// splat would; every other report still does. Each finding also has a test
// of its own (titled with its id) that provokes it and fails once it no
// longer reproduces on a kernel its probe says should have it, so the list
// cannot go stale silently.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-root.ts';

export const FINDINGS_PATH = join(PACKAGE_ROOT, 'fixtures', 'findings.json');

/**
 * A results folder's record of the known wrong results its cases met (suites/support/findings.ts
 * reportFinding): one JSON line { id, what } each. A WARN or BUG is found in the kernel log instead.
 */
export const REPORTED_FINDINGS_FILE = 'findings-reported.jsonl';

/** The ids in a results folder's findings-reported.jsonl, with how many times each was reported (none without one). */
export function reportedFindings(resultsDir: string): Map<string, { count: number; first: string }> {
  const out = new Map<string, { count: number; first: string }>();
  const path = join(resultsDir, REPORTED_FINDINGS_FILE);
  if (!existsSync(path)) return out;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const { id, what } = JSON.parse(line) as { id: string; what: string };
    const seen = out.get(id);
    if (seen) seen.count++;
    else out.set(id, { count: 1, first: what });
  }
  return out;
}

export interface KernelFinding {
  /** KF-NNNN */
  id: string;
  title: string;
  /** docs/findings/<id>.md, relative to the package root. */
  doc: string;
  /** The kind of kernel report (lib/vm/kernel-log.ts names them), or 'wrong result' (nothing in the log). */
  kind: string;
  /** Regular expressions; a kernel report (its first lines) matching any is this finding. Empty for a wrong result. */
  signature: RegExp[];
  /** The full title (mocha fullTitle) of the test that reproduces it. */
  test: string;
}

const ID = /^KF-\d{4}$/;
const WRONG_RESULT = 'wrong result';

/** Reads and checks fixtures/findings.json: an entry that cannot be used is an error, not something to skip. */
export function loadFindings(path = FINDINGS_PATH): KernelFinding[] {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as { format?: unknown; findings?: unknown };
  if (raw.format !== 1 || !Array.isArray(raw.findings)) throw new Error(`${path}: expected { "format": 1, "findings": [...] }`);
  const seen = new Set<string>();
  return raw.findings.map((entry: Record<string, unknown>, i: number) => {
    const where = `${path}: findings[${i}]`;
    for (const key of Object.keys(entry)) {
      if (!['id', 'title', 'doc', 'kind', 'signature', 'test'].includes(key)) throw new Error(`${where}: unknown key ${key}`);
    }
    const { id, title, doc, kind, signature, test } = entry;
    if (typeof id !== 'string' || !ID.test(id)) throw new Error(`${where}: id must look like KF-0001`);
    if (seen.has(id)) throw new Error(`${where}: duplicate id ${id}`);
    seen.add(id);
    for (const [name, value] of Object.entries({ title, doc, kind, test })) {
      if (typeof value !== 'string' || !value) throw new Error(`${where} (${id}): ${name} must be a non-empty string`);
    }
    if (!(test as string).includes(id)) throw new Error(`${where}: the test's title must carry the id ${id}`);
    if (!Array.isArray(signature) || !signature.every((s) => typeof s === 'string') || (signature.length === 0) !== (kind === WRONG_RESULT)) {
      throw new Error(`${where} (${id}): signature must be a list of regular expressions, empty exactly for a '${WRONG_RESULT}'`);
    }
    return { id, title, doc, kind, signature: signature.map((s: string) => new RegExp(s)), test } as KernelFinding;
  });
}

/** The finding a kernel report (as lib/vm/kernel-log.ts:kernelProblems gives it) is, or null. */
export function findingOf(problem: string, findings: readonly KernelFinding[]): KernelFinding | null {
  return findings.find((f) => problem.startsWith(`${f.kind}: `) && f.signature.some((re) => re.test(problem))) ?? null;
}

export interface ClassifiedProblems {
  known: { finding: KernelFinding; problem: string }[];
  unknown: string[];
}

export function classifyProblems(problems: readonly string[], findings: readonly KernelFinding[]): ClassifiedProblems {
  const out: ClassifiedProblems = { known: [], unknown: [] };
  for (const problem of problems) {
    const finding = findingOf(problem, findings);
    if (finding) out.known.push({ finding, problem });
    else out.unknown.push(problem);
  }
  return out;
}
