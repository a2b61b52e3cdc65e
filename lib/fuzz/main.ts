// What `fuzz --here` runs (in the guest): a timed fuzz from a seed, a replay
// of a replay file, or the mutation bench (each deliberate model mutation of
// suites/fuzz-mutations fuzzed until found or out of time). Writes fuzz.json
// to the results folder; a failed run never leaves an older pass there.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FuzzProfile } from './commands.ts';
import { FuzzSession, fuzz, guestProfile, prepareFaultInjection, readReplayFile, replaySteps, type FuzzResult } from './runner.ts';

export interface FuzzHereOptions {
  seed: number;
  timeMs: number;
  faultEvery: number;
  out: string;
  replay?: string;
  mutation?: string;
  /** The guest's profile: viommu adds the VFIO container steps (default: the guest's, else mock). */
  profile?: FuzzProfile;
}

const say = (l: string) => process.stdout.write(`${l}\n`);

function replayCommand(file: string): string {
  return `npx iommufd-conformance fuzz --profile ${process.env.IOMMUFD_CONFORMANCE_PROFILE ?? 'mock'} --replay ${file}`;
}

function summary(r: FuzzResult, seed: number): void {
  say(`fuzz: seed ${seed}: ${r.runs} runs, ${r.steps} steps in ${r.seconds.toFixed(1)} s: ${r.stepsPerSecond.toFixed(0)} steps/s in lockstep`);
  if (r.replayFile) say(`fuzz: replay with: ${replayCommand(r.replayFile)}`);
}

async function mutations() {
  return (await import('../../suites/fuzz-mutations/mutations.ts')).MUTATIONS;
}

export async function fuzzHere(o: FuzzHereOptions): Promise<boolean> {
  const profile = o.profile ?? guestProfile();
  mkdirSync(o.out, { recursive: true });
  const report = join(o.out, 'fuzz.json');
  rmSync(report, { force: true });
  if (o.faultEvery > 0 || o.replay) {
    const fi = await prepareFaultInjection();
    if ('missing' in fi) {
      say(`fuzz: no fail-nth steps: ${fi.missing}`);
      o = { ...o, faultEvery: 0 };
    } else {
      process.on('exit', () => fi.restore());
    }
  }

  if (o.replay) {
    const r = readReplayFile(o.replay);
    const all = await mutations();
    const m = r.mutation ? all.find((x) => x.name === r.mutation) : undefined;
    if (r.mutation && !m) throw new Error(`${o.replay}: mutation ${r.mutation} is not in suites/fuzz-mutations`);
    const revert = m?.apply();
    say(`fuzz: replaying ${r.steps.length} step(s) of seed ${r.seed}${m ? ` with mutation ${m.name}` : ''}`);
    try {
      replaySteps(r.steps, new FuzzSession('lockstep', profile));
      say('fuzz: the sequence ran with no divergence');
      writeFileSync(report, JSON.stringify({ replay: o.replay, ok: true }, null, 2));
      return true;
    } catch (e) {
      say(`fuzz: the sequence diverges again:\n${e instanceof Error ? e.message : String(e)}`);
      writeFileSync(report, JSON.stringify({ replay: o.replay, ok: false, error: String(e) }, null, 2));
      return false;
    } finally {
      revert?.();
    }
  }

  if (o.mutation === 'all' || o.mutation?.includes(',')) return mutationBench(o);

  let revert: (() => void) | undefined;
  if (o.mutation) {
    const m = (await mutations()).find((x) => x.name === o.mutation);
    if (!m) throw new Error(`no mutation named ${o.mutation} (see suites/fuzz-mutations/mutations.ts)`);
    revert = m.apply();
  }
  say(`fuzz: profile ${profile}, seed ${o.seed}, ${(o.timeMs / 1000).toFixed(0)} s, fail-nth in about 1 step of ${o.faultEvery}${o.mutation ? `, mutation ${o.mutation}` : ''}`);
  let r: FuzzResult;
  try {
    r = fuzz({ seed: o.seed, timeMs: o.timeMs, faultEvery: o.faultEvery, out: o.out, mutation: o.mutation ?? null, profile });
  } finally {
    revert?.();
  }
  summary(r, o.seed);
  writeFileSync(report, JSON.stringify({ profile, seed: o.seed, mutation: o.mutation ?? null, ...r }, null, 2));
  return r.ok;
}

/** Each mutation fuzzed for up to timeMs from the same seed: found or not, and how long it took. */
async function mutationBench(o: FuzzHereOptions): Promise<boolean> {
  const all = await mutations();
  const chosen = o.mutation === 'all' ? all : all.filter((m) => o.mutation!.split(',').includes(m.name));
  const rows: { name: string; description: string; found: boolean; seconds: number | null; steps: number; error: string | null }[] = [];
  for (const m of chosen) {
    const revert = m.apply();
    let r: FuzzResult;
    try {
      r = fuzz({ seed: o.seed, timeMs: o.timeMs, faultEvery: o.faultEvery, out: join(o.out, 'mutations'), mutation: m.name, log: () => {} });
    } catch (e) {
      // The session itself broke (its setup diverged): that is found at once.
      r = { ok: false, runs: 0, steps: 0, seconds: 0, stepsPerSecond: 0, firstFailureSeconds: 0, replayFile: null, testFile: null, error: String(e) };
    } finally {
      revert();
    }
    const row = { name: m.name, description: m.description, found: !r.ok, seconds: r.firstFailureSeconds, steps: r.steps, error: r.error?.split('\n')[0] ?? null };
    rows.push(row);
    say(`mutation ${m.name}: ${row.found ? `found after ${row.seconds?.toFixed(1)} s` : `NOT found in ${(o.timeMs / 1000).toFixed(0)} s`}${row.error ? ` (${row.error.slice(0, 120)})` : ''}`);
  }
  const found = rows.filter((r) => r.found);
  const times = found.map((r) => r.seconds ?? 0).sort((a, b) => a - b);
  const median = times.length === 0 ? null : times.length % 2 ? times[(times.length - 1) / 2]! : (times[times.length / 2 - 1]! + times[times.length / 2]!) / 2;
  say(`mutations found: ${found.length}/${rows.length}; median time to find ${median === null ? 'n/a' : `${median.toFixed(1)} s`} (seed ${o.seed}, at most ${(o.timeMs / 1000).toFixed(0)} s each)`);
  writeFileSync(join(o.out, 'fuzz.json'), JSON.stringify({ seed: o.seed, timeMs: o.timeMs, found: found.length, total: rows.length, medianSeconds: median, mutations: rows }, null, 2));
  return found.length === rows.length;
}
