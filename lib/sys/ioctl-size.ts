// The size a struct carries at offset 0 (VFIO's argsz, iommufd's size): the
// kernel reads, and writes back, up to that many bytes at the pointer, so a
// buffer shorter than it lets the kernel write into Node's heap. The request
// number of an iommufd or VFIO ioctl is _IO (it encodes no size: the
// backends check the ones that do), so the check lives here, for every
// backend, and the callers that know their struct begins with one say so
// (lib/kernel/ioctl-call.ts: layouts with a `sizeField`).
import type { IoctlArg } from './types.ts';

/**
 * Throws a RangeError, naming `what`, if `view` is shorter than the u32 at
 * its offset 0 says. `kernelWritesUpTo`: where the ioctl is known never to
 * write past a fixed length whatever the size says (VFIO's MAP_DMA copies in
 * minsz and writes nothing back), only that much buffer is required, so a
 * test can still hand the kernel a lying argsz; by default (a capability
 * chain, iommufd's write-back of min(size, the kernel's struct)) the whole
 * size must be there.
 */
export function checkLeadingSize(view: ArrayBufferView, what = 'ioctl', kernelWritesUpTo = Infinity): void {
  if (view.byteLength < 4) throw new RangeError(`${what}: arg is ${view.byteLength} bytes, too short for its leading 4-byte size`);
  // A Uint8Array is read in place: `.buffer` would move a small one off the JS heap (slow under TCG).
  const size = view instanceof Uint8Array ? (view[0]! | (view[1]! << 8) | (view[2]! << 16) | (view[3]! << 24)) >>> 0 : new DataView(view.buffer, view.byteOffset, 4).getUint32(0, true);
  if (Math.min(size, kernelWritesUpTo) > view.byteLength) {
    throw new RangeError(`${what}: arg is ${view.byteLength} bytes but its leading size (argsz) is ${size}: the kernel would write past the buffer (use a buffer of at least ${size} bytes, or a raw address)`);
  }
}

/** checkLeadingSize for an ioctl argument that is a view; values and NULL are the caller's own pointers. */
export function checkLeadingSizeOf(arg: IoctlArg, what = 'ioctl'): void {
  if (typeof arg === 'object' && arg !== null) checkLeadingSize(arg, what);
}
