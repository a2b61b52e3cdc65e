// One "nth fault site" across a whole test body, as iommufd_fail_nth.c arms
// /proc/thread-self/fail-nth for the body of each TEST_FAIL_NTH. Node runs JS
// between the body's system calls (JIT, GC, page faults on its heap), which
// must not use up or suffer the injected fault; so instead of leaving the
// counter armed, each call of the body is armed on its own with the count
// still remaining, and the count the kernel leaves is carried to the next
// call. The kernel sees exactly the sites the body's calls reach, in order.
//
// Not every fault site is an allocation, and not every injected failure is
// an error. CONFIG_IOMMUFD_TEST adds iommufd_should_fail() points, one of
// them in iommufd_get_object (main.c), which then answers -ENOENT: with
// iommufd_fail_nth.c's debugfs setup, IOAS_ALLOC, IOAS_ALLOC, IOVA_RANGES(first
// id) reaches sites kzalloc + xa_alloc's node (the first ID of an
// XA_FLAGS_ALLOC1 xarray needs one), kzalloc, iommufd_get_object: at nth=4
// both allocations succeed and IOVA_RANGES of an existing IOAS says ENOENT.
// That is the kernel's test point, not a miscounted carry: the counts read
// back after each call in the guest are 4->2->1->0. And xa_alloc's
// GFP_NOWAIT node allocation is retried with GFP_KERNEL, so a call whose
// site fired can still succeed (`injected` true, ret >= 0).
import { sys as fullSys, type IoctlArg, type Mapping, type Sys, type SysCore } from '../sys/index.ts';

export class FailNthInjector {
  /** Sites still to pass before the nth fails; 0 once it failed (or when idle). */
  remaining = 0;
  injected = false;
  /** Calls made while armed. */
  calls = 0;
  readonly #sys: Sys;

  constructor(sys: Sys = fullSys()) {
    this.#sys = sys;
  }

  /** Arms for the nth fault site of the calls that follow. */
  arm(nth: number): void {
    if (!Number.isInteger(nth) || nth < 1) throw new RangeError(`FailNthInjector.arm: nth must be a positive integer (got ${nth})`);
    this.remaining = nth;
    this.injected = false;
    this.calls = 0;
  }

  disarm(): void {
    this.remaining = 0;
  }

  get armed(): boolean {
    return this.remaining > 0;
  }

  private settle(r: { ret: number; injected: boolean; remaining: number } | number): number {
    if (typeof r === 'number') throw new Error(`fail-nth is not available: errno ${-r} (CONFIG_FAULT_INJECTION, /proc/thread-self/fail-nth)`);
    this.calls++;
    if (r.injected) {
      this.injected = true;
      this.remaining = 0;
    } else {
      this.remaining = r.remaining;
    }
    return r.ret;
  }

  ioctl(fd: number, request: number, arg: IoctlArg): number {
    if (!this.armed) return this.#sys.ioctl(fd, request, arg);
    return this.settle(this.#sys.ioctlFailNth(fd, request, arg, this.remaining));
  }

  open(path: string, flags: number, mode?: number): number {
    if (!this.armed) return this.#sys.open(path, flags, mode);
    return this.settle(this.#sys.openFailNth(path, flags, this.remaining));
  }

  close(fd: number): number {
    if (!this.armed) return this.#sys.close(fd);
    return this.settle(this.#sys.closeFailNth(fd, this.remaining));
  }

  /** A SysCore whose ioctl and close go through this injector: build kernel clients on it. */
  sysCore(): SysCore {
    const base = this.#sys;
    return {
      backend: base.backend,
      open: (path: string, flags: number, mode?: number) => this.open(path, flags, mode),
      close: (fd: number) => this.close(fd),
      ioctl: (fd: number, request: number, arg: IoctlArg) => this.ioctl(fd, request, arg),
      addressOf: (view: ArrayBufferView) => base.addressOf(view),
      mmap: (length: number, prot: number, flags: number, fd?: number, offset?: number, align?: number) => base.mmap(length, prot, flags, fd, offset, align),
      munmap: (mapping: Mapping, offset?: number, length?: number) => base.munmap(mapping, offset, length),
      read: (fd: number, buffer: ArrayBufferView) => base.read(fd, buffer),
      write: (fd: number, buffer: ArrayBufferView) => base.write(fd, buffer),
      poll: (fd: number, events: number, timeoutMs: number) => base.poll(fd, events, timeoutMs),
    };
  }
}
