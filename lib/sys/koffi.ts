// The koffi backend: the SysCore calls made straight to libc from JS through
// koffi's FFI, with no code of ours in C. It exists to cross-check the addon
// (both must give identical results for identical calls) and to compare call
// overheads in bench/.
//
// Argument validation copies native/args.cc rule for rule and message for
// message, so a wrong argument throws the same class with the same text on
// either backend.
//
// One difference remains: the addon detaches a mapping's ArrayBuffer on
// munmap, but JS cannot detach the external buffer koffi.view() makes (Node
// marks external buffers untransferable, so a transfer copies them instead,
// which reads the unmapped memory). Here munmap records the unmapped pages
// in a WeakMap keyed by the buffer, and reusing the range is the same
// RangeError ("already unmapped"); but the buffer keeps its byteLength, and
// reading it after munmap faults, exactly as it would in C. mmap itself
// follows the addon: memory JS cannot touch without a fault (not
// PROT_READ|PROT_WRITE, a device, file pages past the end) gets a 0-byte
// buffer, not a view.
import { createRequire } from 'node:module';
import type { IoctlArg, Mapping, SysCore } from './types.ts';
import { fstatSync } from 'node:fs';
import { MAP_ANONYMOUS, PAGE_SIZE, PROT_READ, PROT_WRITE } from './constants.ts';

type Koffi = typeof import('koffi');

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

// ---- argument validation (mirrors native/args.cc) ----

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'number') return String(v);
  return typeof v;
}

function typeError(fn: string, name: string, expected: string, got: unknown): TypeError {
  return new TypeError(`${fn}: ${name} must be ${expected} (got ${describe(got)})`);
}

function rangeError(fn: string, name: string, why: string): RangeError {
  return new RangeError(`${fn}: ${name} ${why}`);
}

function toInteger(v: unknown, fn: string, name: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(fn, name, 'an integer', v);
  if (v < min || v > max) throw rangeError(fn, name, `must be between ${min} and ${max} (got ${describe(v)})`);
  return v;
}

const toFd = (v: unknown, fn: string, name: string): number => toInteger(v, fn, name, 0, 2147483647);
const toFlags = (v: unknown, fn: string, name: string): number => toInteger(v, fn, name, -2147483648, 4294967295) | 0;
const toLength = (v: unknown, fn: string, name: string): number => toInteger(v, fn, name, 0, MAX_SAFE);

function toUint32(v: unknown, fn: string, name: string): number {
  if (typeof v === 'bigint') {
    if (v < 0n || v > 0xffff_ffffn) throw rangeError(fn, name, 'must be between 0 and 4294967295');
    return Number(v);
  }
  if (typeof v !== 'number') throw typeError(fn, name, 'an integer or a bigint', v);
  return toInteger(v, fn, name, 0, 4294967295);
}

function toUint64(v: unknown, fn: string, name: string): bigint | number {
  if (typeof v === 'bigint') {
    if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw rangeError(fn, name, 'must be between 0n and 2n ** 64n - 1n');
    return v;
  }
  if (typeof v !== 'number') throw typeError(fn, name, 'a bigint or a non-negative integer', v);
  return toInteger(v, fn, name, 0, MAX_SAFE);
}

function toView(v: unknown, fn: string, name: string): ArrayBufferView {
  if (!ArrayBuffer.isView(v)) throw typeError(fn, name, 'an ArrayBufferView (typed array or DataView)', v);
  return v;
}

function toPath(v: unknown, fn: string, name: string): string {
  if (typeof v !== 'string') throw typeError(fn, name, 'a string', v);
  if (v.includes('\0')) throw typeError(fn, name, 'a string without NUL characters', v);
  return v;
}

function getProperty(v: unknown, fn: string, name: string, key: string): unknown {
  if (typeof v !== 'object' || v === null) throw typeError(fn, name, 'an object', v);
  return (v as Record<string, unknown>)[key];
}

/**
 * _IOC_SIZE of a request made with _IOR/_IOW/_IOWR (native/fd.cc IocSize):
 * a view shorter than it would let the kernel write past it.
 */
function checkIocSize(request: number, view: ArrayBufferView): void {
  const encoded = request >>> 30 !== 0 ? (request >>> 16) & 0x3fff : 0;
  if (encoded !== 0 && view.byteLength < encoded) {
    throw rangeError('ioctl', 'arg', `is ${view.byteLength} bytes, shorter than the ${encoded} bytes request 0x${request.toString(16)} encodes`);
  }
}

// ---- mapping state (mirrors native/memory.cc) ----

interface MappingState {
  base: bigint;
  length: number;
  /** One flag per page: 1 once munmap removed it. */
  unmapped: Uint8Array;
}

const mappingStates = new WeakMap<object, MappingState>();

function toMapping(v: unknown, fn: string): MappingState {
  const buffer = getProperty(v, fn, 'mapping', 'buffer');
  const state = typeof buffer === 'object' && buffer !== null ? mappingStates.get(buffer) : undefined;
  if (!state) throw typeError(fn, 'mapping', 'a Mapping returned by mmap', v);
  const address = toUint64(getProperty(v, fn, 'mapping', 'address'), fn, 'mapping.address');
  const length = toLength(getProperty(v, fn, 'mapping', 'length'), fn, 'mapping.length');
  if (BigInt(address) !== state.base || length !== state.length) {
    throw rangeError(fn, 'mapping', 'address and length do not match the ones mmap returned');
  }
  return state;
}

function toRange(fn: string, state: MappingState, offsetArg: unknown, lengthArg: unknown, endAligned: boolean):
    [offset: number, length: number] {
  const offset = offsetArg === undefined ? 0 : toLength(offsetArg, fn, 'offset');
  let length = state.length;
  if (lengthArg !== undefined) length = toLength(lengthArg, fn, 'length');
  else if (offset <= state.length) length = state.length - offset;
  if (offset % PAGE_SIZE !== 0) {
    throw rangeError(fn, 'offset', `must be a multiple of the page size (${PAGE_SIZE})`);
  }
  if (offset > state.length || length > state.length - offset) {
    throw rangeError(fn, 'offset', `and length must lie inside the mapping (offset ${offset}, length ${length}, mapping length ${state.length})`);
  }
  if (endAligned && (offset + length) % PAGE_SIZE !== 0 && offset + length !== state.length) {
    throw rangeError(fn, 'length', 'must end on a page boundary or at the end of the mapping');
  }
  for (let p = offset / PAGE_SIZE; p < Math.ceil((offset + length) / PAGE_SIZE); p++) {
    if (state.unmapped[p]) throw rangeError(fn, 'mapping', `is already unmapped (page at offset ${p * PAGE_SIZE})`);
  }
  return [offset, length];
}

// ---- the backend ----

let loaded: SysCore | undefined;

/** The koffi SysCore; loads koffi and binds libc on first use. */
export function loadKoffi(): SysCore {
  if (loaded) return loaded;
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const libc = koffi.load('libc.so.6');

  const open = libc.func('int open(const char *path, int flags, ...)');
  const close = libc.func('int close(int fd)');
  const ioctl = libc.func('int ioctl(int fd, unsigned long request, ...)');
  const mmap = libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)');
  const munmap = libc.func('int munmap(void *addr, size_t length)');
  const read = libc.func('long read(int fd, _Out_ void *buf, size_t count)');
  const write = libc.func('long write(int fd, const void *buf, size_t count)');
  const poll = libc.func('int poll(_Inout_ void *fds, unsigned long nfds, int timeout)');
  // Resolved once: a variadic call names each extra argument's type, and a
  // type object saves koffi parsing a type string on every ioctl.
  const voidPointer = koffi.pointer(koffi.types.void);
  const unsignedLong = koffi.types.ulong;
  const uint32 = koffi.types.uint32;

  const sys: SysCore = {
    backend: 'koffi',

    open(path: string, flags: number, mode?: number): number {
      const p = toPath(path, 'open', 'path');
      const f = toFlags(flags, 'open', 'flags');
      const m = mode === undefined ? 0 : toInteger(mode, 'open', 'mode', 0, 0o7777);
      const fd = open(p, f, uint32, m) as number;
      return fd < 0 ? -koffi.errno() : fd;
    },

    close(fd: number): number {
      const ret = close(toFd(fd, 'close', 'fd')) as number;
      return ret < 0 ? -koffi.errno() : ret;
    },

    read(fd: number, buffer: ArrayBufferView): number {
      const f = toFd(fd, 'read', 'fd');
      const view = toView(buffer, 'read', 'buffer');
      const ret = Number(read(f, view, view.byteLength));
      return ret < 0 ? -koffi.errno() : ret;
    },

    write(fd: number, buffer: ArrayBufferView): number {
      const f = toFd(fd, 'write', 'fd');
      const view = toView(buffer, 'write', 'buffer');
      const ret = Number(write(f, view, view.byteLength));
      return ret < 0 ? -koffi.errno() : ret;
    },

    poll(fd: number, events: number, timeoutMs: number): number {
      const f = toFd(fd, 'poll', 'fd');
      const ev = toInteger(events, 'poll', 'events', 0, 0x7fff);
      const timeout = toInteger(timeoutMs, 'poll', 'timeoutMs', -1, 2147483647);
      // struct pollfd { int fd; short events; short revents; }
      const pfd = new DataView(new ArrayBuffer(8));
      pfd.setInt32(0, f, true);
      pfd.setInt16(4, ev, true);
      const ret = poll(pfd, 1, timeout) as number;
      if (ret <= 0) return ret < 0 ? -koffi.errno() : 0;
      return pfd.getInt16(6, true);
    },

    ioctl(fd: number, request: number, arg: IoctlArg): number {
      const f = toFd(fd, 'ioctl', 'fd');
      const r = toUint32(request, 'ioctl', 'request');
      let ret: number;
      if (typeof arg === 'object' && arg !== null) {
        const view = toView(arg, 'ioctl', 'arg');
        checkIocSize(r, view);
        ret = ioctl(f, r, voidPointer, view) as number;
      } else if (arg === null) {
        ret = ioctl(f, r, voidPointer, null) as number;
      } else if (typeof arg === 'bigint' || typeof arg === 'number') {
        ret = ioctl(f, r, unsignedLong, toUint64(arg, 'ioctl', 'arg')) as number;
      } else {
        throw typeError('ioctl', 'arg', 'an ArrayBufferView, a bigint, a non-negative integer or null', arg);
      }
      return ret < 0 ? -koffi.errno() : ret;
    },

    addressOf(view: ArrayBufferView): bigint {
      return koffi.address(toView(view, 'addressOf', 'view'));
    },

    mmap(length: number, prot: number, flags: number, fd?: number, offset?: number, align?: number): Mapping | number {
      const l = toLength(length, 'mmap', 'length');
      const p = toFlags(prot, 'mmap', 'prot');
      const f = toFlags(flags, 'mmap', 'flags');
      const d = fd === undefined ? -1 : toInteger(fd, 'mmap', 'fd', -1, 2147483647);
      const o = offset === undefined ? 0 : toLength(offset, 'mmap', 'offset');
      if (align !== undefined && align !== 0) throw new RangeError('mmap: align is not supported by the koffi backend (use the addon)');
      if ((f & 0x10) !== 0) throw new RangeError('mmap: flags must not contain MAP_FIXED (use mmapOver)');
      // What backs the pages decides whether JS may have a view (native/memory.cc Viewable).
      let fileSize: number | null = null;
      let regular = true;
      if (d >= 0 && (f & MAP_ANONYMOUS) === 0) {
        try {
          const st = fstatSync(d);
          regular = st.isFile();
          fileSize = st.size;
        } catch {
          // EBADF and the like: mmap below fails with the same errno.
        }
      }
      const address = mmap(null, l, p, f, d, o) as bigint;
      if (address === MAP_FAILED) return -koffi.errno();
      // As the addon: a view only over memory JS can read and write without a
      // fault: PROT_READ|PROT_WRITE, and no file page at or past the file's end.
      const viewable = (p & (PROT_READ | PROT_WRITE)) === (PROT_READ | PROT_WRITE) && regular &&
        (fileSize === null || o + Math.ceil(l / PAGE_SIZE - 1) * PAGE_SIZE < fileSize);
      const buffer = viewable ? koffi.view(address, l) : new ArrayBuffer(0);
      mappingStates.set(buffer, { base: address, length: l, unmapped: new Uint8Array(Math.ceil(l / PAGE_SIZE)) });
      return { address, length: l, buffer };
    },

    munmap(mapping: Mapping, offset?: number, length?: number): number {
      const state = toMapping(mapping, 'munmap');
      const [o, l] = toRange('munmap', state, offset, length, true);
      const ret = munmap(state.base + BigInt(o), l) as number;
      if (ret < 0) return -koffi.errno();
      state.unmapped.fill(1, o / PAGE_SIZE, Math.ceil((o + l) / PAGE_SIZE));
      return 0;
    },
  };
  loaded = Object.freeze(sys);
  return loaded;
}
