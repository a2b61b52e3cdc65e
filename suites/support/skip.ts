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

export interface NotCheckedHolder {
  notChecked?: string[];
}

/**
 * A part of a test that the running kernel cannot do, in a test whose other
 * checks ran: the test reports what it ran (it passes or fails on those), and
 * the part left out is named under it, in the console as a KTAP diagnostic
 * line ("# FIXTURE.VARIANT.TEST: not checked: ...") and on the test object
 * (`notChecked`) for a reporter. For when the kernel's own selftest has the
 * part inside one case; a part that is a case of its own is skipped instead.
 */
export function notChecked(ctx: Context, what: string, reason: string): void {
  const test = ctx.test as (Runnable & NotCheckedHolder) | undefined;
  const line = `not checked: ${what} (${reason})`;
  if (test) (test.notChecked ??= []).push(line);
  const name = test ? test.titlePath().map((t) => t.trim().replace(/\s+/g, '_')).join('.') : 'test';
  console.log(`      # ${name}: ${line}`);
}
