// The system-call surface the rest of the project sees. Two backends implement
// the core of it (the N-API addon in native/, and koffi); the addon alone
// implements the extras that need C (fork, capabilities, fail-nth).
//
// Convention: kernel errors are values, not exceptions. A call returns its
// result (>= 0) or a negative errno. A wrong *argument* (wrong JS type, a
// negative length, a short buffer) throws a TypeError or RangeError that names
// the argument.

/** Anything an ioctl can take as its third argument. */
export type IoctlArg =
  | ArrayBufferView   // passed as a pointer to its first byte
  | bigint            // passed by value as an unsigned long (also raw, possibly bad, pointers)
  | number            // passed by value (non-negative safe integer)
  | null;             // NULL

/** An anonymous or file mapping made by mmap. */
export interface Mapping {
  /** Address of the first byte in this process. */
  readonly address: bigint;
  readonly length: number;
  /**
   * A view of the mapping's bytes while every page can be read and written
   * without a fault; otherwise 0 bytes (PROT_NONE or PROT_READ pages, a
   * device, file pages past the file's end, pages unmapped). The addon
   * detaches it and puts a new one on this object when mprotect, mmapOver,
   * munmap or ftruncate change that: read `mapping.buffer` again after them.
   */
  readonly buffer: ArrayBuffer;
}

export interface SysCore {
  readonly backend: 'addon' | 'koffi';
  open(path: string, flags: number, mode?: number): number;
  close(fd: number): number;
  ioctl(fd: number, request: number, arg: IoctlArg): number;
  /** read(2) into the view: bytes read, or -errno (an event queue fd's whole-event reads). */
  read(fd: number, buffer: ArrayBufferView): number;
  /** write(2) of the view: bytes written, or -errno (an iommufd fault fd's whole page responses). */
  write(fd: number, buffer: ArrayBufferView): number;
  /** poll(2) of one fd: its revents (0 on timeout), or -errno. */
  poll(fd: number, events: number, timeoutMs: number): number;
  /** Address of a view's first byte, for structs that carry user pointers. */
  addressOf(view: ArrayBufferView): bigint;
  /**
   * Returns a Mapping, or a negative errno. `align` (a power of two multiple
   * of the page size; addon only) places it at an address aligned to that.
   * MAP_FIXED is refused (RangeError): see Sys.mmapOver.
   */
  mmap(length: number, prot: number, flags: number, fd?: number, offset?: number, align?: number): Mapping | number;
  /** Unmaps [offset, offset+length) of a mapping made by mmap (default: all of it). The view is detached. */
  munmap(mapping: Mapping, offset?: number, length?: number): number;
  /**
   * The fds open in the process the calls run in, where that is not this process's /proc/self/fd (a model
   * standing in for the kernel): lockstep lists them around a call that makes an fd (lib/kernel/fd-table.ts).
   */
  openFds?(): Set<number>;
}

export interface RLimit {
  cur: bigint;
  max: bigint;
}

export interface Capabilities {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

export interface ForkedIoctl {
  /** The child's pid. */
  pid: number;
  /** The ioctl's result in the child (>= 0, or -errno). */
  ret: number;
  /** The argument buffer's bytes as the child saw them after its ioctl. */
  out: Uint8Array;
}

export interface FailNthResult {
  /** The call's result (>= 0, or -errno). */
  ret: number;
  /** The nth fault site was reached during the call. */
  injected: boolean;
  /** Fault sites still to pass before the nth (0 when injected). */
  remaining: number;
}

export interface Sys extends SysCore {
  /** MAP_FIXED over [offset, offset+length) of a mapping made by mmap: new pages (anonymous, hugetlb, a memfd...) in place. */
  mmapOver(mapping: Mapping, offset: number, length: number, prot: number, flags: number, fd?: number, fileOffset?: number): number;
  mprotect(mapping: Mapping, offset: number, length: number, prot: number): number;
  madvise(mapping: Mapping, offset: number, length: number, advice: number): number;
  /**
   * A copy of [offset, offset+length) of a mapping JS has no view of (a device's: an iommufd
   * mmap region), at most a page; -EFAULT where the memory cannot be read (never a signal).
   */
  peek(mapping: Mapping, offset: number, length: number): Uint8Array | number;
  memfdCreate(name: string, flags: number): number;
  ftruncate(fd: number, length: number): number;
  getrlimit(resource: number): RLimit | number;
  setrlimit(resource: number, limit: RLimit): number;
  /** The calling thread's capability sets (capget, version 3). */
  capget(): Capabilities | number;
  /** Sets the calling thread's capability sets (capset, version 3). */
  capset(caps: Capabilities): number;
  /**
   * Forks; the child issues one ioctl on fd with a copy of arg, reports the
   * result and the argument's bytes back, then exits at once (keepAlive false,
   * the selftests' fork_gone) or waits until forkRelease (fork_present).
   */
  forkIoctl(fd: number, request: number, arg: ArrayBufferView, keepAlive: boolean): ForkedIoctl | number;
  /** Lets a kept-alive child exit and reaps it; returns its exit status or -errno. */
  forkRelease(pid: number): number;
  /**
   * Writes nth to /proc/thread-self/fail-nth, issues one ioctl on the same
   * thread, then reads fail-nth back and disarms it. `injected` is true when
   * the nth fault site was reached (the kernel's counter reached 0).
   */
  ioctlFailNth(fd: number, request: number, arg: IoctlArg, nth: number): FailNthResult | number;
  /** close(fd) with fail-nth armed, as ioctlFailNth. */
  closeFailNth(fd: number, nth: number): FailNthResult | number;
  /** open(path, flags) with fail-nth armed, as ioctlFailNth: `ret` is the fd or -errno. */
  openFailNth(path: string, flags: number, nth: number): FailNthResult | number;
}
