// Scalars read and written in place in a Uint8Array, in the host's byte order
// (kernel ioctls read structs in host byte order), without a DataView.
//
// Why: V8 keeps a typed array of up to 64 bytes on the JS heap, and the first
// `.buffer` of one (which `new DataView(bytes.buffer, ...)` and `subarray`
// need) moves its bytes into a new off-heap ArrayBuffer: ~1.2 us natively,
// ~10x that under TCG, more than the whole ioctl. The hot path (the codec,
// the model's reads of its copy of a struct, the lockstep's copies and
// compares) reads and writes bytes through these instead.

export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// u64 through one 8-byte scratch: its bytes are the host's order of the BigInt.
const scratch64 = new BigUint64Array(1);
const scratch8 = new Uint8Array(scratch64.buffer);

export function readU8(b: Uint8Array, o: number): number {
  return b[o]!;
}

export function readU16(b: Uint8Array, o: number): number {
  return LITTLE_ENDIAN ? b[o]! | (b[o + 1]! << 8) : (b[o]! << 8) | b[o + 1]!;
}

export function readU32(b: Uint8Array, o: number): number {
  return (LITTLE_ENDIAN ? b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24) : (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

export function readS32(b: Uint8Array, o: number): number {
  return LITTLE_ENDIAN ? b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24) : (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
}

export function readU64(b: Uint8Array, o: number): bigint {
  // Most values fit in 32 bits (IDs, lengths, flags): one BigInt from a number.
  const high = LITTLE_ENDIAN ? readU32(b, o + 4) : readU32(b, o);
  if (high === 0) return BigInt(LITTLE_ENDIAN ? readU32(b, o) : readU32(b, o + 4));
  for (let i = 0; i < 8; i++) scratch8[i] = b[o + i]!;
  return scratch64[0]!;
}

/** Writes the low 8 bits of `v`. */
export function writeU8(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
}

/** Writes the low 16 bits of `v`. */
export function writeU16(b: Uint8Array, o: number, v: number): void {
  if (LITTLE_ENDIAN) {
    b[o] = v;
    b[o + 1] = v >>> 8;
  } else {
    b[o] = v >>> 8;
    b[o + 1] = v;
  }
}

/** Writes the low 32 bits of `v` (an s32 as its two's complement). */
export function writeU32(b: Uint8Array, o: number, v: number): void {
  if (LITTLE_ENDIAN) {
    b[o] = v;
    b[o + 1] = v >>> 8;
    b[o + 2] = v >>> 16;
    b[o + 3] = v >>> 24;
  } else {
    b[o] = v >>> 24;
    b[o + 1] = v >>> 16;
    b[o + 2] = v >>> 8;
    b[o + 3] = v;
  }
}

/** Writes `v` modulo 2^64 (callers check the range first). */
export function writeU64(b: Uint8Array, o: number, v: bigint): void {
  scratch64[0] = v;
  for (let i = 0; i < 8; i++) b[o + i] = scratch8[i]!;
}

/** Writes a non-negative safe integer as a u64, without making a BigInt. */
export function writeU64Number(b: Uint8Array, o: number, v: number): void {
  const lo = v % 4294967296;
  const hi = Math.floor(v / 4294967296);
  if (LITTLE_ENDIAN) {
    writeU32(b, o, lo);
    writeU32(b, o + 4, hi);
  } else {
    writeU32(b, o, hi);
    writeU32(b, o + 4, lo);
  }
}

/** Whether two byte ranges are equal: a loop for small ones (no Buffer made), Buffer.compare for large ones. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  if (n <= 256) {
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, n), Buffer.from(b.buffer, b.byteOffset, n)) === 0;
}

/** A copy of `length` bytes of `src` from `from`, without a subarray (which would move a small array off the heap). */
export function copyOf(src: Uint8Array, from = 0, length = src.length - from): Uint8Array {
  if (length > 256) return src.slice(from, from + length);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = src[from + i]!;
  return out;
}
