// The bounded fuzz of CI (`npm test`), one suite per profile: random ioctl
// sequences in lockstep with the model, fail-nth mixed in (lib/fuzz), from
// fixed seeds and one random seed, printed, for a bounded time each. A
// divergence fails the test, naming the replay file, the generated mocha
// test and the command that replays it. The steps per second in the guest
// are printed. suites/vm/<profile>/fuzz.test.ts say what each profile needs.
import { randomInt } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Context } from 'mocha';
import type { FuzzProfile } from '../../lib/fuzz/commands.ts';
import { lockstep } from './lockstep.ts';
import { skipBecause } from './skip.ts';

export interface BoundedFuzz {
  profile: FuzzProfile;
  fixedSeeds: number[];
  secondsPerSeed: number;
  /** Skips (with the reason) where the guest lacks what the profile's steps need. */
  requires(ctx: Context): void;
}

export function describeBoundedFuzz({ profile, fixedSeeds, secondsPerSeed, requires }: BoundedFuzz): void {
  describe(`fuzz.${profile}`, function () {
    this.timeout((secondsPerSeed + 120) * 1000);
    let restore: (() => void) | undefined;
    let out: string;
    // Loaded here, not at file load: every guest run loads every test file before its first test, and the
    // fuzzer with fast-check is 400 KB of the 1.3 MB a mock guest run compiles.
    let runner: typeof import('../../lib/fuzz/runner.ts');

    before(async function () {
      requires(this);
      if (lockstep().mode !== 'lockstep') skipBecause(this, `the fuzzer's oracle is lockstep (mode ${lockstep().mode})`);
      runner = await import('../../lib/fuzz/runner.ts');
      const fi = await runner.prepareFaultInjection();
      if ('missing' in fi) console.log(`      # fuzz.${profile}: not checked: fail-nth steps (${fi.missing})`);
      else restore = () => fi.restore();
      out = join(process.env.IOMMUFD_CONFORMANCE_OUT ?? '/tmp', 'fuzz');
      mkdirSync(out, { recursive: true });
    });
    after(() => restore?.());

    const seeds = [...fixedSeeds.map((s) => ({ seed: s, random: false })), { seed: randomInt(0, 2 ** 31 - 1), random: true }];
    for (const { seed, random } of seeds) {
      it(`${random ? 'a random seed' : `seed ${seed}`}: ${secondsPerSeed} s with no divergence`, function () {
        const faultEvery = restore ? 8 : 0;
        const r = runner.fuzz({ seed, timeMs: secondsPerSeed * 1000, faultEvery, out, profile, log: (l) => console.log(`      ${l}`) });
        console.log(`      fuzz seed ${seed}${random ? ' (random)' : ''}: ${r.runs} runs, ${r.steps} steps in ${r.seconds.toFixed(1)} s: ${r.stepsPerSecond.toFixed(0)} steps/s`);
        if (!r.ok) {
          throw new Error(
            `fuzz seed ${seed}: divergence (replay file ${r.replayFile}, mocha test ${r.testFile}; ` +
              `replay with: npx iommufd-conformance fuzz --profile ${profile} --replay ${r.replayFile}):\n${r.error}`,
          );
        }
      });
    }
  });
}
