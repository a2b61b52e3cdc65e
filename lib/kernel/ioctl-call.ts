// The one place a typed client turns a struct into an ioctl: encode, issue,
// decode. Kernel errors come back as `errno` (0 on success), never thrown.
import { checkLeadingSize, checkLeadingSizeOf, coreSys, type SysCore } from '../sys/index.ts';
import { readU32 } from '../uapi/bytes.ts';
import type { AnyStructLayout, EncodeOptions } from '../uapi/layout.ts';

export interface Errno {
  /** 0 on success, else the positive errno the ioctl failed with. */
  errno: number;
}

export interface StructCall<T> extends Errno {
  /** The ioctl's return value (>= 0) when it succeeded. */
  ret: number;
  /** The argument struct as the kernel left it. */
  out: T;
  /** The raw argument bytes after the call. */
  bytes: Uint8Array;
}

export function errnoOf(ret: number): number {
  return ret < 0 ? -ret : 0;
}

/**
 * Encodes `input` with `layout`, issues `request` on `fd`, and decodes the
 * struct back. A struct that begins with its size (argsz) is refused, before
 * the call, when the buffer is shorter than that size (RangeError):
 * `kernelWritesUpTo` relaxes that for ioctls known to write no further (see
 * checkLeadingSize).
 */
export function callStruct<L extends AnyStructLayout>(
  sys: SysCore,
  fd: number,
  request: number,
  layout: L,
  input: Parameters<L['encode']>[0],
  opts?: EncodeOptions,
  kernelWritesUpTo?: number,
): StructCall<ReturnType<L['decode']>> {
  return callBytes(sys, fd, request, layout, layout.encode(input, opts), kernelWritesUpTo);
}

/** callStruct with the struct already encoded (`bytes`, which the call changes in place). */
export function callBytes<L extends AnyStructLayout>(sys: SysCore, fd: number, request: number, layout: L, bytes: Uint8Array, kernelWritesUpTo?: number): StructCall<ReturnType<L['decode']>> {
  // The usual case (the size is the buffer's) is told apart in place: the message is built only for a refusal.
  if (layout.sizeField && !(bytes.length >= 4 && Math.min(readU32(bytes, 0), kernelWritesUpTo ?? Infinity) <= bytes.length)) {
    checkLeadingSize(bytes, `ioctl ${layout.name}`, kernelWritesUpTo);
  }
  const ret = sys.ioctl(fd, request, bytes);
  return new LazyStructCall(ret, layout, bytes) as StructCall<ReturnType<L['decode']>>;
}

// Most callers read one or two outputs, or none (a test loop of ACCESS_RW
// reads only errno): decoding a union-heavy struct such as iommu_test_cmd on
// every call cost more than the ioctl itself under TCG. `out` is decoded the
// first time it is read, from the bytes as the kernel left them.
class LazyStructCall {
  readonly errno: number;
  readonly ret: number;
  #out: unknown;
  constructor(ret: number, readonly layout: AnyStructLayout, readonly bytes: Uint8Array) {
    this.errno = errnoOf(ret);
    this.ret = Math.max(ret, 0);
  }
  get out(): unknown {
    return (this.#out ??= this.layout.decode(this.bytes));
  }
}

/** An open character device (/dev/iommu, /dev/vfio/vfio, a VFIO group or device). */
export class DeviceFile {
  #fd: number;
  constructor(readonly path: string, fd: number, readonly sys: SysCore) {
    this.#fd = fd;
  }

  get fd(): number {
    if (this.#fd < 0) throw new Error(`${this.path} is closed`);
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * Any ioctl with any argument, for malformed structs and unknown numbers.
   * `leadingSize`: the argument begins with its size (argsz): a shorter buffer is a RangeError.
   */
  ioctl(request: number, arg: Parameters<SysCore['ioctl']>[2], opts: { leadingSize?: boolean } = {}): Errno & { ret: number } {
    if (opts.leadingSize) checkLeadingSizeOf(arg);
    const ret = this.sys.ioctl(this.fd, request, arg);
    return { errno: errnoOf(ret), ret: Math.max(ret, 0) };
  }

  close(): Errno {
    if (this.#fd < 0) return { errno: 0 };
    const ret = this.sys.close(this.#fd);
    this.#fd = -1;
    return { errno: errnoOf(ret) };
  }
}

export function openDevice(path: string, flags: number, sys: SysCore = coreSys()): { errno: number; fd: number } {
  const fd = sys.open(path, flags);
  return fd < 0 ? { errno: -fd, fd: -1 } : { errno: 0, fd };
}
