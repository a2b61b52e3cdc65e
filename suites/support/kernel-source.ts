// The kernel tree a unit test reads files from (run_kselftest.sh, kunit_parser.py): Debian's default
// series through the tool's cache. Where it cannot be had the test skips with the reason, except in CI.
import type { Context } from 'mocha';
import { ensureKernelSource, SetupError, type KernelSource } from '../../lib/kbuild/source.ts';
import { skipBecause } from './skip.ts';

export async function kernelSourceOrSkip(ctx: Context, purpose: string): Promise<KernelSource> {
  try {
    return await ensureKernelSource();
  } catch (e) {
    if (!(e instanceof SetupError)) throw e;
    if (process.env.CI === 'true') throw e;
    return skipBecause(ctx, `kernel source (${purpose}) unavailable: ${e.message.split('\n')[0]}`);
  }
}
