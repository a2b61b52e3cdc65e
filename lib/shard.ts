// --shard K/N: N runners share one profile's cases, each running the K-th
// part. The split is by test, decided from the tests' KTAP names alone, so
// every machine that loads the same suites with the same --grep makes the
// same split: the selected names are ordered by the SHA-256 of the name (ties,
// that is the same name twice, by load order) and dealt round-robin, which
// spreads a fixture's tests over the shards and keeps the parts within one
// test of each other. Out-of-shard tests are removed from their suites before
// mocha runs, so they are not run, not counted, not reported: a shard's plan
// is its own tests, and a suite left without tests runs none of its hooks.
import { createHash } from 'node:crypto';
import type { Suite, Test } from 'mocha';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

/** Parses "K/N" (1 <= K <= N); anything else is a RangeError naming the value. */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new RangeError(`--shard takes K/N (e.g. 2/4), not '${text}'`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`--shard ${text}: N must be at least 1`);
  if (!Number.isSafeInteger(index) || index < 1 || index > count) throw new RangeError(`--shard ${text}: K must be between 1 and N`);
  return { index, count };
}

export function shardLabel(s: Shard): string {
  return `${s.index}/${s.count}`;
}

function nameHash(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

/**
 * The shard (1-based) of each name, by position. The same list gives the same answer on every machine;
 * every position gets exactly one shard, and shard sizes differ by at most one.
 */
export function assignShards(names: readonly string[], count: number): number[] {
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`shard count must be a positive integer, not ${count}`);
  const order = names.map((name, i) => ({ i, h: nameHash(name) }));
  order.sort((a, b) => (a.h < b.h ? -1 : a.h > b.h ? 1 : a.i - b.i));
  const shardOf = new Array<number>(names.length);
  order.forEach((o, rank) => {
    shardOf[o.i] = (rank % count) + 1;
  });
  return shardOf;
}

/** A digest of the whole selection (before sharding), so shards that saw different lists can be told apart. */
export function selectionDigest(names: readonly string[]): string {
  return createHash('sha256').update(names.join('\n')).digest('hex').slice(0, 16);
}

export interface ShardSelection {
  /** Tests selected by --grep (the list the shards split), in load order. */
  total: number;
  /** Tests this shard keeps. */
  selected: number;
  digest: string;
}

function testsOf(suite: Suite, out: Test[] = []): Test[] {
  out.push(...suite.tests);
  for (const s of suite.suites) testsOf(s, out);
  return out;
}

/**
 * Removes from a loaded mocha suite tree the tests outside `shard` (with `shard` null, removes nothing and
 * only measures). `grep` is the run's --grep as mocha applies it (to the full title); tests it excludes
 * stay for mocha to filter and are not part of the split. `nameOf` gives a test's KTAP name.
 */
export function applyShard(root: Suite, shard: Shard | null, grep: RegExp | null, nameOf: (t: Test) => string): ShardSelection {
  const candidates = testsOf(root).filter((t) => !grep || grep.test(t.fullTitle()));
  const names = candidates.map(nameOf);
  const digest = selectionDigest(names);
  if (!shard) return { total: candidates.length, selected: candidates.length, digest };
  const shardOf = assignShards(names, shard.count);
  const drop = new Set(candidates.filter((_, i) => shardOf[i] !== shard.index));
  const prune = (suite: Suite) => {
    suite.tests = suite.tests.filter((t) => !drop.has(t));
    suite.suites.forEach(prune);
  };
  prune(root);
  return { total: candidates.length, selected: candidates.length - drop.size, digest };
}
