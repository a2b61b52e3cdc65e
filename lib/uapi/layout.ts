// A small declarative codec for C structs of the kernel uAPI.
//
// Layouts are computed with the C rules of the x86_64 SysV ABI: every member
// sits at the next multiple of its alignment, a struct is as aligned as its
// most aligned member, and sizeof is rounded up to that alignment. __u64 is
// 8-aligned on x86_64, so __aligned_u64 and __u64 are the same type here
// (both exported, so a layout reads like its header). A test builds any
// struct, including malformed ones: reserved fields are ordinary fields, the
// buffer may be shorter or longer than sizeof, and the leading size/argsz
// field may lie.
//
// Field names are the kernel's, verbatim. The layout check
// (suites/unit/layout.test.ts) compares every offset and size with the C
// compiler's view of the real headers.

import { LITTLE_ENDIAN, readS32, readU16, readU32, readU64, writeU32 } from './bytes.ts';
import { compiledCodec } from './compiled-codec.ts';

// The compiled codec (compiled-codec.ts) unless a test asks for the interpreted one to compare them.
let useCompiled = true;

/** Runs `body` with the interpreted codec alone (the reference the compiled one is tested against). */
export function withInterpretedCodec<T>(body: () => T): T {
  const outer = useCompiled;
  useCompiled = false;
  try {
    return body();
  } finally {
    useCompiled = outer;
  }
}

// ---------------------------------------------------------------- field types

export type ScalarKind = 'u8' | 'u16' | 'u32' | 's32' | 'u64';

export interface ScalarType<K extends ScalarKind = ScalarKind> {
  readonly kind: K;
  readonly size: number;
  readonly align: number;
}

export interface ArrayType<E extends ElementType = ElementType> {
  readonly kind: 'array';
  readonly of: E;
  readonly length: number;
  readonly size: number;
  readonly align: number;
}

/** A C99 flexible array member (`T name[];`): size 0, elements follow the struct. */
export interface FlexArrayType<E extends ElementType = ElementType> {
  readonly kind: 'flex';
  readonly of: E;
  /** The earlier field holding the element count, when the struct has one (decode reads that many). */
  readonly countField: string | undefined;
  readonly size: 0;
  readonly align: number;
}

/** Bytes a layout needs that C does not name (none of the covered headers needs it; kept for hand-made structs). */
export interface PaddingType {
  readonly kind: 'pad';
  readonly size: number;
  readonly align: 1;
}

/** A C11 anonymous union: its members are members of the enclosing struct, all at one offset. */
export interface AnonymousUnionType<M extends UnionSpec = UnionSpec> {
  readonly kind: 'union';
  readonly members: M;
  readonly size: number;
  readonly align: number;
}

/** A layout with its member types erased: what registries and generic code hold. */
export type AnyStructLayout = StructLayout<any>;

export type ElementType = ScalarType | ArrayType<any> | AnyStructLayout;
export type FieldType = ElementType | FlexArrayType<any> | PaddingType | AnonymousUnionType<any>;
export type Spec = { readonly [name: string]: FieldType };
export type UnionSpec = { readonly [name: string]: ElementType };

const scalar = <K extends ScalarKind>(kind: K, size: number): ScalarType<K> => Object.freeze({ kind, size, align: size });

export const u8 = scalar('u8', 1);
export const u16 = scalar('u16', 2);
export const u32 = scalar('u32', 4);
export const s32 = scalar('s32', 4);
export const u64 = scalar('u64', 8);
/** __aligned_u64: 8-aligned on every arch; on x86_64 identical to __u64. */
export const aligned_u64 = u64;
/** __aligned_le64: a little-endian u64 (driver data such as an SMMU STE); the x86_64 host is little-endian, so u64. */
export const aligned_le64 = u64;
/** A user pointer member (`__u64 *data`): 8 bytes on x86_64, carried as a u64 address. */
export const uptr = u64;

export function array<E extends ElementType>(of: E, length: number): ArrayType<E> {
  if (!Number.isInteger(length) || length < 1) throw new RangeError(`array length must be a positive integer, got ${length}; use flex() for T name[]`);
  return Object.freeze({ kind: 'array', of, length, size: of.size * length, align: of.align });
}

export function flex<E extends ElementType>(of: E, opts: { count?: string } = {}): FlexArrayType<E> {
  return Object.freeze({ kind: 'flex', of, countField: opts.count, size: 0, align: of.align });
}

export function pad(size: number): PaddingType {
  return Object.freeze({ kind: 'pad', size, align: 1 });
}

export function anonymousUnion<M extends UnionSpec>(members: M): AnonymousUnionType<M> {
  const align = Math.max(1, ...Object.values(members).map((t) => t.align));
  const size = alignUp(Math.max(0, ...Object.values(members).map((t) => t.size)), align);
  return Object.freeze({ kind: 'union', members, size, align });
}

// ---------------------------------------------------------------- value types

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type NamedKeys<S> = { [K in keyof S]: S[K] extends AnonymousUnionType<any> | PaddingType ? never : K }[keyof S];
type UnionMembersOf<S> = { [K in keyof S]: S[K] extends AnonymousUnionType<infer M> ? M : never }[keyof S];

/** The members C sees: named fields, plus the members of anonymous unions, minus padding. */
export type Members<S extends Spec> = Pick<S, NamedKeys<S>> &
  ([UnionMembersOf<S>] extends [never] ? unknown : UnionToIntersection<UnionMembersOf<S>>);

/** What encode accepts for a field: u64 as bigint or safe integer, arrays as arrays, structs as objects. */
export type InputOf<T> = T extends ScalarType<'u64'>
  ? bigint | number
  : T extends ScalarType
    ? number
    : T extends ArrayType<infer E> | FlexArrayType<infer E>
      ? readonly InputOf<E>[]
      : T extends StructLayout<infer S>
        ? StructInput<S>
        : never;

/** What decode returns for a field: u64 as bigint, other scalars as number. */
export type OutputOf<T> = T extends ScalarType<'u64'>
  ? bigint
  : T extends ScalarType
    ? number
    : T extends ArrayType<infer E> | FlexArrayType<infer E>
      ? OutputOf<E>[]
      : T extends StructLayout<infer S>
        ? StructOutput<S>
        : never;

export type StructInput<S extends Spec> = { [K in keyof Members<S>]?: InputOf<Members<S>[K]> };
export type StructOutput<S extends Spec> = { [K in keyof Members<S>]: OutputOf<Members<S>[K]> };

/** A member name, or a dotted path into nested structs ('mock_domain.out_stdev_id'). */
export type FieldPath<S extends Spec> = {
  [K in keyof Members<S> & string]: K | (Members<S>[K] extends StructLayout<infer N> ? `${K}.${FieldPath<N>}` : never);
}[keyof Members<S> & string];

export type TypeAt<S extends Spec, P extends string> = P extends keyof Members<S>
  ? Members<S>[P]
  : P extends `${infer H}.${infer R}`
    ? H extends keyof Members<S>
      ? Members<S>[H] extends StructLayout<infer N>
        ? TypeAt<N, R>
        : never
      : never
    : never;

// ---------------------------------------------------------------- layouts

export interface FieldInfo {
  /** The C member name (for a nested path, the dotted path). */
  readonly name: string;
  /** Byte offset from the start of the outermost struct asked. */
  readonly offset: number;
  /** sizeof the member (0 for a flexible array member). */
  readonly size: number;
  readonly type: ElementType | FlexArrayType<any>;
  readonly kind: (ElementType | FlexArrayType<any>)['kind'];
}

export interface EncodeOptions {
  /**
   * Total buffer length. Shorter than sizeof: the struct is truncated (a
   * short user struct). Longer: zero bytes follow, or `tail`. Default: the
   * struct (with its flexible array elements) plus `tail`.
   */
  length?: number;
  /** Bytes written right after the struct and its flexible array elements (a long user struct's tail). */
  tail?: Uint8Array | readonly number[];
}

export interface StructOptions {
  /** __attribute__((packed)): no padding, alignment 1. */
  packed?: boolean;
}


function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A struct's layout and codec. Also usable as the type of a nested member. */
export class StructLayout<S extends Spec> {
  readonly kind = 'struct';
  /** The C struct tag ('' for an anonymous struct). */
  readonly name: string;
  readonly spec: S;
  readonly sizeof: number;
  /** Same as sizeof: lets a layout serve as a member type. */
  readonly size: number;
  readonly align: number;
  readonly packed: boolean;
  /** The members C sees, in declaration order (anonymous union members flattened in place). */
  readonly fields: readonly FieldInfo[];
  /** The leading size/argsz member that encode fills with the buffer length, if the struct has one. */
  readonly sizeField: 'size' | 'argsz' | undefined;
  /** The trailing flexible array member, if any. */
  readonly flexField: FieldInfo | undefined;
  readonly #byName = new Map<string, FieldInfo>();
  /** Dotted paths resolved so far (a handler reads the same few on every call); direct members are in #byName. */
  readonly #byPath = new Map<string, FieldInfo>();

  constructor(name: string, spec: S, opts: StructOptions = {}) {
    this.name = name;
    this.spec = spec;
    this.packed = opts.packed ?? false;
    const alignOf = (t: { align: number }) => (this.packed ? 1 : t.align);
    const fields: FieldInfo[] = [];
    const add = (info: FieldInfo) => {
      if (this.#byName.has(info.name)) throw new TypeError(`${this.label}: duplicate member ${info.name}`);
      this.#byName.set(info.name, info);
      fields.push(info);
    };
    let end = 0;
    let align = 1;
    const entries = Object.entries(spec);
    entries.forEach(([member, type], i) => {
      const offset = alignUp(end, alignOf(type));
      align = Math.max(align, alignOf(type));
      end = offset + type.size;
      if (type.kind === 'pad') return;
      if (type.kind === 'union') {
        for (const [m, t] of Object.entries(type.members as UnionSpec)) add({ name: m, offset, size: t.size, type: t, kind: t.kind });
        return;
      }
      if (type.kind === 'flex') {
        if (i !== entries.length - 1) throw new TypeError(`${this.label}: flexible array ${member} must be the last member`);
        if (type.countField !== undefined) {
          const count = this.#byName.get(type.countField);
          if (!count || (count.kind !== 'u32' && count.kind !== 'u16' && count.kind !== 'u8' && count.kind !== 'u64')) {
            throw new TypeError(`${this.label}: count field ${type.countField} of ${member} must be an earlier unsigned member`);
          }
        }
      }
      add({ name: member, offset, size: type.size, type, kind: type.kind });
    });
    this.align = align;
    this.sizeof = this.size = alignUp(end, align);
    this.fields = Object.freeze(fields);
    const first = fields[0];
    this.sizeField = first && (first.name === 'size' || first.name === 'argsz') && first.kind === 'u32' ? first.name : undefined;
    this.flexField = fields.find((f) => f.kind === 'flex');
    Object.freeze(this);
  }

  private get label(): string {
    return this.name === '' ? 'anonymous struct' : `struct ${this.name}`;
  }

  /** A direct member by name (anonymous union members included), or undefined. */
  memberInfo(name: string): FieldInfo | undefined {
    return this.#byName.get(name);
  }

  /** A member by name or dotted path, with its offset from the start of this struct. */
  field(path: FieldPath<S>): FieldInfo;
  field(path: string): FieldInfo;
  field(path: string): FieldInfo {
    const known = this.#byPath.get(path);
    if (known) return known;
    const dot = path.indexOf('.');
    const head = this.#byName.get(dot < 0 ? path : path.slice(0, dot));
    if (!head) throw new RangeError(`${this.label} has no member ${JSON.stringify(path)}`);
    if (dot < 0) return head;
    if (!(head.type instanceof StructLayout)) throw new RangeError(`${this.label}: ${head.name} is not a struct, cannot resolve ${path}`);
    const inner = head.type.field(path.slice(dot + 1));
    const info = Object.freeze({ ...inner, name: path, offset: head.offset + inner.offset });
    this.#byPath.set(path, info);
    return info;
  }

  offsetOf(path: FieldPath<S>): number {
    return this.field(path).offset;
  }

  sizeOf(path: FieldPath<S>): number {
    return this.field(path).size;
  }

  /** offsetofend(): where the kernel's minimum size for an ioctl ends. */
  offsetEnd(path: FieldPath<S>): number {
    const f = this.field(path);
    return f.offset + f.size;
  }

  /** Every member, recursing into nested structs (dotted names), in declaration order. */
  allFields(): FieldInfo[] {
    return this.fields.flatMap((f) => [
      f,
      ...(f.type instanceof StructLayout ? (f.type as AnyStructLayout).allFields().map((g) => ({ ...g, name: `${f.name}.${g.name}`, offset: f.offset + g.offset })) : []),
    ]);
  }

  /**
   * Encodes into a new buffer; unspecified members are zero. The leading
   * size/argsz member, unless given, is set to the buffer's length.
   */
  encode(values: StructInput<S> = {}, opts: EncodeOptions = {}): Uint8Array {
    const flexCount = this.flexField ? ((values as Record<string, readonly unknown[] | undefined>)[this.flexField.name]?.length ?? 0) : 0;
    const natural = this.flexField ? Math.max(this.sizeof, this.flexField.offset + flexCount * (this.flexField.type as FlexArrayType).of.size) : this.sizeof;
    const tail = opts.tail ?? [];
    const length = opts.length ?? natural + tail.length;
    if (!Number.isInteger(length) || length < 0) throw new RangeError(`${this.label}: length must be a non-negative integer, got ${length}`);
    if (tail.length > 0 && natural + tail.length > length) {
      throw new RangeError(`${this.label}: a ${tail.length}-byte tail after ${natural} bytes does not fit in length ${length}`);
    }
    const bytes = new Uint8Array(Math.max(length, natural));
    // The compiled encoder, or (for anything it does not take as it is) the interpreted one from scratch.
    if (!useCompiled || !compiledCodec(this).encode(bytes, 0, values)) {
      bytes.fill(0);
      encodeStruct(viewOf(bytes), 0, this, values, () => this.name);
    }
    if (this.sizeField && (values as Record<string, unknown>)[this.sizeField] === undefined) {
      if (length >>> 0 === length) writeU32(bytes, 0, length);
      else writeScalar(viewOf(bytes), 0, u32, length, () => `${this.name}.${this.sizeField}`);
    }
    bytes.set(tail, natural);
    return length < bytes.length ? bytes.slice(0, length) : bytes;
  }

  /**
   * Decodes the struct at `offset`. Bytes past the end of `bytes` read as
   * zero: that is how the kernel sees a short user struct
   * (copy_struct_from_user zero-fills), and a kernel reply is at most as long
   * as the buffer given. Flexible array elements are never zero-filled: decode
   * returns those that fit whole (at most the count member's value, when the
   * array has one).
   */
  decode(bytes: Uint8Array, offset = 0): StructOutput<S> {
    // A whole struct is read where it is; a short one from a zero-extended copy.
    const whole = Number.isInteger(offset) && offset >= 0 && offset + this.sizeof <= bytes.length;
    let own = bytes;
    if (!whole) {
      own = new Uint8Array(this.sizeof);
      if (offset < bytes.length) own.set(bytes.subarray(offset, offset + this.sizeof));
    }
    const out = useCompiled ? compiledCodec(this).decode(own, whole ? offset : 0) : decodeStruct(viewOf(own), whole ? offset : 0, this);
    const f = this.flexField;
    if (f) {
      const elem = (f.type as FlexArrayType).of;
      const countField = (f.type as FlexArrayType).countField;
      const count = countField !== undefined ? Number(out[countField]) : Infinity;
      const fit = elem.size === 0 ? 0 : Math.max(0, Math.floor((bytes.length - offset - f.offset) / elem.size));
      const view = viewOf(bytes);
      out[f.name] = Array.from({ length: Math.min(count, fit) }, (_, i) => decodeValue(view, offset + f.offset + i * elem.size, elem));
    }
    return out as StructOutput<S>;
  }

  /** Reads one member (or nested path) of the struct at `offset`; throws if it is not wholly inside `bytes`. */
  read<P extends FieldPath<S>>(bytes: Uint8Array, path: P, offset = 0): OutputOf<TypeAt<S, P>> {
    const f = this.field(path);
    if (f.kind === 'flex') return (this.decode(bytes, offset) as Record<string, unknown>)[f.name] as OutputOf<TypeAt<S, P>>;
    this.checkInside(bytes, f, offset);
    const at = offset + f.offset;
    if (Number.isInteger(at)) {
      switch (f.kind) {
        case 'u8': return bytes[at] as OutputOf<TypeAt<S, P>>;
        case 'u16': return readU16(bytes, at) as OutputOf<TypeAt<S, P>>;
        case 'u32': return readU32(bytes, at) as OutputOf<TypeAt<S, P>>;
        case 's32': return readS32(bytes, at) as OutputOf<TypeAt<S, P>>;
        case 'u64': return readU64(bytes, at) as OutputOf<TypeAt<S, P>>;
      }
    }
    return decodeValue(viewOf(bytes), at, f.type as ElementType) as OutputOf<TypeAt<S, P>>;
  }

  /** Writes one member (or nested path) of the struct at `offset` in place. */
  write<P extends FieldPath<S>>(bytes: Uint8Array, path: P, value: InputOf<TypeAt<S, P>>, offset = 0): void {
    const f = this.field(path);
    if (f.kind === 'flex') throw new TypeError(`${this.label}: write flexible array ${f.name} with encode()`);
    this.checkInside(bytes, f, offset);
    const at = offset + f.offset;
    // A u32 in range is written in place; anything else through the interpreted codec (its checks and errors).
    if (f.kind === 'u32' && typeof value === 'number' && value >>> 0 === value && Number.isInteger(at)) return writeU32(bytes, at, value);
    encodeValue(viewOf(bytes), at, f.type as ElementType, value, () => `${this.name}.${path}`);
  }

  /** Encodes consecutive structs, as for an array in a separate user buffer (e.g. iommu_iova_range[]). */
  encodeArray(list: readonly StructInput<S>[]): Uint8Array {
    const bytes = new Uint8Array(list.length * this.sizeof);
    list.forEach((values, i) => bytes.set(this.encode(values), i * this.sizeof));
    return bytes;
  }

  /** Decodes `count` consecutive structs (default: as many as fit whole). */
  decodeArray(bytes: Uint8Array, count?: number, offset = 0): StructOutput<S>[] {
    const n = count ?? Math.max(0, Math.floor((bytes.length - offset) / this.sizeof));
    return Array.from({ length: n }, (_, i) => this.decode(bytes, offset + i * this.sizeof));
  }

  private checkInside(bytes: Uint8Array, f: FieldInfo, offset: number): void {
    if (offset < 0 || offset + f.offset + f.size > bytes.length) {
      throw new RangeError(`${this.label}: ${f.name} (bytes ${offset + f.offset}..${offset + f.offset + f.size}) is outside a ${bytes.length}-byte buffer`);
    }
  }
}

/** Declares a struct; `name` is the C tag, `spec` the members in declaration order. */
export function struct<S extends Spec>(name: string, spec: S, opts?: StructOptions): StructLayout<S> {
  if (name === '') throw new TypeError('struct name must not be empty; use anonymousStruct()');
  return new StructLayout(name, spec, opts);
}

/** An unnamed struct type, as the members of iommu_test_cmd's union. */
export function anonymousStruct<S extends Spec>(spec: S, opts?: StructOptions): StructLayout<S> {
  return new StructLayout('', spec, opts);
}

export function isStructLayout(value: unknown): value is AnyStructLayout {
  return value instanceof StructLayout;
}

// ---------------------------------------------------------------- codec


// Paths name the member in an error; they are built only when one is thrown
// (building them for every member of every call dominated the encode cost).
type PathOf = () => string;

const NUMBER_LIMITS: Record<Exclude<ScalarKind, 'u64'>, [number, number]> = {
  u8: [0, 0xff],
  u16: [0, 0xffff],
  u32: [0, 0xffff_ffff],
  s32: [-0x8000_0000, 0x7fff_ffff],
};

function writeScalar(view: DataView, offset: number, type: ScalarType, value: unknown, path: PathOf): void {
  if (type.kind === 'u64') {
    let big: bigint;
    if (typeof value === 'bigint') big = value;
    else if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value);
    else throw new TypeError(`${path()}: expected a bigint or safe integer, got ${String(value)}`);
    if (big < 0n || big > 0xffff_ffff_ffff_ffffn) throw new RangeError(`${path()}: ${big} is out of u64 range`);
    return view.setBigUint64(offset, big, LITTLE_ENDIAN);
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new TypeError(`${path()}: expected an integer, got ${String(value)}`);
  const [min, max] = NUMBER_LIMITS[type.kind];
  if (value < min || value > max) throw new RangeError(`${path()}: ${value} is out of ${type.kind} range`);
  switch (type.kind) {
    case 'u8': return view.setUint8(offset, value);
    case 'u16': return view.setUint16(offset, value, LITTLE_ENDIAN);
    case 'u32': return view.setUint32(offset, value, LITTLE_ENDIAN);
    case 's32': return view.setInt32(offset, value, LITTLE_ENDIAN);
  }
}

function readScalar(view: DataView, offset: number, type: ScalarType): number | bigint {
  switch (type.kind) {
    case 'u8': return view.getUint8(offset);
    case 'u16': return view.getUint16(offset, LITTLE_ENDIAN);
    case 'u32': return view.getUint32(offset, LITTLE_ENDIAN);
    case 's32': return view.getInt32(offset, LITTLE_ENDIAN);
    case 'u64': return view.getBigUint64(offset, LITTLE_ENDIAN);
  }
}

function encodeElements(view: DataView, offset: number, of: ElementType, value: unknown, max: number, path: PathOf): void {
  if (!Array.isArray(value)) throw new TypeError(`${path()}: expected an array`);
  if (value.length > max) throw new RangeError(`${path()}: ${value.length} elements do not fit in ${max}`);
  value.forEach((v, i) => encodeValue(view, offset + i * of.size, of, v, () => `${path()}[${i}]`));
}

function encodeValue(view: DataView, offset: number, type: ElementType | FlexArrayType, value: unknown, path: PathOf): void {
  if (type instanceof StructLayout) return encodeStruct(view, offset, type, value, path);
  if (type.kind === 'array') return encodeElements(view, offset, type.of, value, type.length, path);
  if (type.kind === 'flex') return encodeElements(view, offset, type.of, value, Infinity, path);
  writeScalar(view, offset, type, value, path);
}

function encodeStruct(view: DataView, offset: number, layout: AnyStructLayout, values: unknown, path: PathOf): void {
  if (typeof values !== 'object' || values === null) throw new TypeError(`${path()}: expected an object`);
  for (const name in values) {
    const value = (values as Record<string, unknown>)[name];
    if (value === undefined || !Object.hasOwn(values, name)) continue;
    // A misspelt member must not silently encode as zero.
    const f = layout.memberInfo(name);
    if (!f) throw new TypeError(`${path()}: struct ${layout.name || '(anonymous)'} has no member ${name}`);
    encodeValue(view, offset + f.offset, f.type, value, () => `${path()}.${name}`);
  }
}

function decodeValue(view: DataView, offset: number, type: ElementType | FlexArrayType): unknown {
  if (type instanceof StructLayout) return decodeStruct(view, offset, type);
  if (type.kind === 'array') return Array.from({ length: type.length }, (_, i) => decodeValue(view, offset + i * type.of.size, type.of));
  if (type.kind === 'flex') return [];
  return readScalar(view, offset, type);
}

function decodeStruct(view: DataView, offset: number, layout: AnyStructLayout): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of layout.fields) out[f.name] = decodeValue(view, offset + f.offset, f.type);
  return out;
}
