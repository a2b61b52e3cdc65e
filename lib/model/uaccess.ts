// What the model's system calls see of user memory, as the kernel's
// copy_from_user/copy_to_user do: the ioctl's argument (a buffer the model
// was given a copy of, or an address) and the user pointers inside structs.
// The model has no page contents of its own: whoever drives it (lockstep, a
// unit test) says what bytes lie at an address. An address it was told
// nothing about is not a fault the model can predict: it cannot answer.
import { readU32 } from '../uapi/bytes.ts';

/** Bytes of the calling process's memory. */
export interface UserAccess {
  /** The bytes at [address, address+length), or null where copy_from_user would fault. */
  read(address: bigint, length: number): Uint8Array | null;
  /** Writes them; false where copy_to_user would fault. */
  write(address: bigint, bytes: Uint8Array): boolean;
}

/**
 * The model cannot answer this call (memory or a file it was told nothing
 * about, an ioctl it does not implement). `reason` is short and stable: the
 * lockstep layer counts such calls by it and fails unless it is on its list.
 */
/**
 * GET_DIRTY_BITMAP of length 0, where the kernel takes it
 * (KernelBehaviour.dirtyBitmapZeroLength, KF-0004), that reports a dirty
 * page past the bitmap buffer the model was given: the walk covers every
 * area contiguous from IOVA 0 and the bitmap has no end, so the kernel
 * writes into the user memory after the buffer. After it the context's
 * dirty bits are not known to the model.
 */
export const DIRTY_BITMAP_ZERO_LENGTH_PAST_BUFFER = 'GET_DIRTY_BITMAP of length 0 reporting past the bitmap buffer';

export class ModelCannotAnswer extends Error {
  override name = 'ModelCannotAnswer';
  constructor(
    readonly reason: string,
    detail = reason,
  ) {
    super(detail === reason ? reason : `${reason}: ${detail}`);
  }
}

/** mmap_min_addr (65536 on Debian): nothing is ever mapped below it, so a copy there faults. */
export const MMAP_MIN_ADDR = 0x10000n;

/**
 * The ioctl's third argument: a buffer (the model's copy of the caller's
 * struct) or a number (a value, or an address the model resolves through
 * UserAccess). Reads and writes are relative to the argument's start.
 */
export class IoctlArgument {
  constructor(
    /** The bytes of the struct argument, when the caller passed a buffer. */
    readonly buffer: Uint8Array | null,
    /** The argument as an unsigned long (for a buffer: its address in the caller). */
    readonly value: bigint,
    readonly user: UserAccess,
  ) {}

  /**
   * Bits of u64s the model wrote into the argument without knowing them, each with its reason (one on
   * lib/lockstep/unchecked.ts's list): lockstep compares the call without them and counts it partly unchecked.
   */
  unknownBits: { offset: number; mask: bigint; reason: string }[] | null = null;

  leaveUnknown(offset: number, mask: bigint, reason: string): void {
    (this.unknownBits ??= []).push({ offset, mask, reason });
  }

  read(offset: number, length: number): Uint8Array | null {
    if (this.buffer) {
      if (offset + length <= this.buffer.length) return this.buffer.subarray(offset, offset + length);
      throw new ModelCannotAnswer('read past the end of the argument buffer', `the kernel would read bytes ${offset}..${offset + length} of a ${this.buffer.length}-byte argument buffer`);
    }
    return this.user.read(this.value + BigInt(offset), length);
  }

  write(offset: number, bytes: Uint8Array): boolean {
    if (this.buffer) {
      if (offset + bytes.length <= this.buffer.length) {
        this.buffer.set(bytes, offset);
        return true;
      }
      throw new ModelCannotAnswer('write past the end of the argument buffer', `the kernel would write bytes ${offset}..${offset + bytes.length} of a ${this.buffer.length}-byte argument buffer`);
    }
    return this.user.write(this.value + BigInt(offset), bytes);
  }

  /** get_user of a u32 at offset; null: EFAULT. */
  u32(offset: number): number | null {
    // The argument's own bytes are read in place (a subarray or DataView would move a small buffer off the JS heap).
    if (this.buffer && offset >= 0 && offset + 4 <= this.buffer.length) return readU32(this.buffer, offset);
    const b = this.read(offset, 4);
    return b ? readU32(b, 0) : null;
  }

  /** copy_from_user of `length` bytes at `offset` into `dst` at 0: false where it faults (read's rules). */
  copyInto(dst: Uint8Array, offset: number, length: number): boolean {
    if (this.buffer && offset >= 0 && offset + length <= this.buffer.length) {
      const b = this.buffer;
      for (let i = 0; i < length; i++) dst[i] = b[offset + i]!;
      return true;
    }
    const src = this.read(offset, length);
    if (!src) return false;
    dst.set(src);
    return true;
  }

  /** copy_to_user of the first `length` bytes of `src` at `offset` (write's rules). */
  writeFrom(offset: number, src: Uint8Array, length: number): boolean {
    if (this.buffer && offset >= 0 && offset + length <= this.buffer.length) {
      const b = this.buffer;
      for (let i = 0; i < length; i++) b[offset + i] = src[i]!;
      return true;
    }
    return this.write(offset, length === src.length ? src : src.subarray(0, length));
  }

  /** A NUL-terminated string from the argument (strndup_user(arg, max)); null: EFAULT. */
  string(max: number): string | null {
    if (this.buffer) {
      const end = this.buffer.indexOf(0);
      if (end < 0) throw new ModelCannotAnswer('read past the end of the argument buffer', 'a string argument without its NUL');
      return new TextDecoder().decode(this.buffer.subarray(0, Math.min(end, max)));
    }
    throw new ModelCannotAnswer('string argument by address');
  }
}

/**
 * User memory the model was told about: each region is a buffer standing
 * for [address, address+length). Addresses below mmap_min_addr fault.
 */
export class KnownMemory implements UserAccess {
  readonly #regions: { address: bigint; bytes: Uint8Array }[] = [];

  add(address: bigint, bytes: Uint8Array): void {
    this.#regions.push({ address, bytes });
  }

  clear(): void {
    this.#regions.length = 0;
  }

  #find(address: bigint, length: number): Uint8Array | null {
    const end = address + BigInt(length);
    for (let i = this.#regions.length - 1; i >= 0; i--) {
      const r = this.#regions[i]!;
      if (address >= r.address && end <= r.address + BigInt(r.bytes.length)) {
        const off = Number(address - r.address);
        return r.bytes.subarray(off, off + length);
      }
    }
    if (address < MMAP_MIN_ADDR) return null;
    throw new ModelCannotAnswer('user pointer to memory the model was not told about', `0x${address.toString(16)}+${length}`);
  }

  read(address: bigint, length: number): Uint8Array | null {
    return this.#find(address, length);
  }

  write(address: bigint, bytes: Uint8Array): boolean {
    const at = this.#find(address, bytes.length);
    if (!at) return false;
    at.set(bytes);
    return true;
  }
}
