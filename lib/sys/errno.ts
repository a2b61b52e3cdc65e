// errno names and numbers, from Node's own table (os.constants.errno) plus
// the kernel-internal codes that can leak to user space through ioctls.
import { constants } from 'node:os';

// Several names share a number; the kernel's headers and strace print these.
const PREFERRED = new Set(['EAGAIN', 'EDEADLK', 'EOPNOTSUPP']);

// include/linux/errno.h: not in libc's table, but an ioctl can return them.
const KERNEL_INTERNAL: Record<string, number> = {
  ERESTARTSYS: 512,
  ERESTARTNOINTR: 513,
  ERESTARTNOHAND: 514,
  ENOIOCTLCMD: 515,
  ERESTART_RESTARTBLOCK: 516,
  EPROBE_DEFER: 517,
  EOPENSTALE: 518,
  ENOPARAM: 519,
  EBADHANDLE: 521,
  ENOTSYNC: 522,
  EBADCOOKIE: 523,
  ENOTSUPP: 524,
  ETOOSMALL: 525,
  ESERVERFAULT: 526,
  EBADTYPE: 527,
  EJUKEBOX: 528,
  EIOCBQUEUED: 529,
  ERECALLCONFLICT: 530,
};

const numbers = new Map<string, number>();
const names = new Map<number, string>();
for (const [name, value] of [...Object.entries(constants.errno), ...Object.entries(KERNEL_INTERNAL)]) {
  numbers.set(name, value);
  if (!names.has(value) || PREFERRED.has(name)) names.set(value, name);
}

/** 'ENOTTY' for 25 or -25; `errno <n>` for a number with no name. */
export function errnoName(n: number): string {
  const abs = Math.abs(n);
  return names.get(abs) ?? `errno ${abs}`;
}

/** The positive errno number of a name such as 'ENOTTY'; throws for an unknown name. */
export function errnoNumber(name: string): number {
  const n = numbers.get(name);
  if (n === undefined) throw new RangeError(`errnoNumber: unknown errno name ${JSON.stringify(name)}`);
  return n;
}
