// Skips with a stated reason. Mocha's own this.skip() records no reason; the
// project reporter (reporter.cjs) reads the reason stored here and counts
// skips by reason in the summary, so a skip is never silent.
import type { Context, Runnable, Suite } from 'mocha';

export interface SkipReasonHolder {
  skipReason?: string;
}

/** Skips the running test, or, from a before()/beforeEach() hook, the tests it guards. */
export function skipBecause(ctx: Context, reason: string): never {
  // In a hook, ctx.test is the hook itself (ctx.currentTest is merely the next
  // test): a before() hook skips the whole suite, so the reason goes on it.
  const runnable = ctx.test as (Runnable & { type?: string; parent?: Suite }) | undefined;
  const target: object | undefined = runnable?.type === 'hook' ? (runnable.title.includes('"before each"') ? ctx.currentTest : runnable.parent) : runnable;
  if (target) (target as SkipReasonHolder).skipReason = reason;
  ctx.skip();
}
