// The bounded fuzz of CI (`npm test`, mock profile): random ioctl sequences
// in lockstep with the model, fail-nth mixed in (lib/fuzz), from fixed seeds
// and one random seed, printed, for a bounded time each. A divergence fails
// the test, naming the replay file, the generated mocha test and the command
// that replays it. The steps per second in the guest are printed.
import { randomInt } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { requireMockDomain } from '../../support/kernel.ts';
import { lockstep } from '../../support/lockstep.ts';
import { skipBecause } from '../../support/skip.ts';

// The fuzzer (and fast-check, ~400 KB of the guest bundle) loads when this suite runs, not when every
// run loads its files: under TCG its compile alone cost a boot a visible share of the time to the first test.
type FuzzRunner = typeof import('../../../lib/fuzz/runner.ts');
const FIXED_SEEDS = [1, 2];
const SECONDS_PER_SEED = 25;

describe('fuzz.mock', function () {
  this.timeout((SECONDS_PER_SEED + 120) * 1000);
  let restore: (() => void) | undefined;
  let out: string;
  let runner: FuzzRunner;

  before(async function () {
    requireMockDomain(this);
    if (lockstep().mode !== 'lockstep') skipBecause(this, `the fuzzer's oracle is lockstep (mode ${lockstep().mode})`);
    runner = await import('../../../lib/fuzz/runner.ts');
    const fi = await runner.prepareFaultInjection();
    if ('missing' in fi) console.log(`      # fuzz.mock: not checked: fail-nth steps (${fi.missing})`);
    else restore = () => fi.restore();
    out = join(process.env.IOMMUFD_CONFORMANCE_OUT ?? '/tmp', 'fuzz');
    mkdirSync(out, { recursive: true });
  });
  after(() => restore?.());

  const seeds = [...FIXED_SEEDS.map((s) => ({ seed: s, random: false })), { seed: randomInt(0, 2 ** 31 - 1), random: true }];
  for (const { seed, random } of seeds) {
    it(`${random ? 'a random seed' : `seed ${seed}`}: ${SECONDS_PER_SEED} s with no divergence`, function () {
      const faultEvery = restore ? 8 : 0;
      const r = runner.fuzz({ seed, timeMs: SECONDS_PER_SEED * 1000, faultEvery, out, profile: 'mock', log: (l) => console.log(`      ${l}`) });
      console.log(`      fuzz seed ${seed}${random ? ' (random)' : ''}: ${r.runs} runs, ${r.steps} steps in ${r.seconds.toFixed(1)} s: ${r.stepsPerSecond.toFixed(0)} steps/s`);
      if (!r.ok) {
        throw new Error(
          `fuzz seed ${seed}: divergence (replay file ${r.replayFile}, mocha test ${r.testFile}; ` +
            `replay with: npx iommufd-conformance fuzz --profile mock --replay ${r.replayFile}):\n${r.error}`,
        );
      }
    });
  }
});
