// The struct codec's fast path: for each layout, an encoder and a decoder
// generated once (new Function) with every member's offset and type written
// into the code, instead of walking the layout member by member, with a Map
// lookup and a closure per member, on every call. Under TCG each JS call
// costs ~10x its native cost, and the lockstep encodes and decodes ~10^5
// structs a run.
//
// The fast encoder handles only input the interpreted codec (layout.ts)
// accepts without question: a plain object whose every defined member is
// known, each value of the right type and in range. On anything else it returns false and the caller runs the
// interpreted codec from scratch, which throws exactly the error it always
// did. The fast decoder builds the same objects, with their keys in the
// same order, as the interpreted one.
import * as Bytes from './bytes.ts';
import type { AnyStructLayout, ElementType, FieldInfo, FlexArrayType, Spec } from './layout.ts';

/** Writes `values` into `bytes` at `offset`; false: not handled (nothing may be assumed about the bytes written). */
export type FastEncoder = (bytes: Uint8Array, offset: number, values: unknown) => boolean;
/** The struct at `offset` (wholly inside `bytes`) as the interpreted decoder returns it (flexible arrays as []). */
export type FastDecoder = (bytes: Uint8Array, offset: number) => Record<string, unknown>;

interface Compiled {
  encode: FastEncoder;
  decode: FastDecoder;
}

const compiled = new WeakMap<AnyStructLayout, Compiled>();

/** The compiled encoder and decoder of a layout, generated on first use. */
export function compiledCodec(layout: AnyStructLayout): Compiled {
  let c = compiled.get(layout);
  if (!c) compiled.set(layout, (c = compile(layout)));
  return c;
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;

function readArray(b: Uint8Array, o: number, length: number, size: number, readOne: (b: Uint8Array, o: number) => unknown): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < length; i++) out.push(readOne(b, o + i * size));
  return out;
}

// What generated code calls, each passed as its own binding: a bundler turns a
// module namespace into an object of getters, which the JIT would not inline.
const SCOPE = {
  U64_MAX,
  readArray,
  readU16: Bytes.readU16,
  readU32: Bytes.readU32,
  readS32: Bytes.readS32,
  readU64: Bytes.readU64,
  writeU16: Bytes.writeU16,
  writeU32: Bytes.writeU32,
  writeU64: Bytes.writeU64,
  writeU64Number: Bytes.writeU64Number,
};

// The generated code made into functions ahead of time: the guest bundle carries them
// (lib/vm/guest-bundle.ts), so that the guest's V8 code cache holds them compiled, where every
// `new Function` was compiled again at each start (~80 ms under TCG; docs/performance.md, "Boot to
// first test"). Per layout, its functions in the order compile() generates them, each with its
// body's length as a check; a body that does not match is compiled as before.
type Factory = (h: unknown[], ...scope: unknown[]) => unknown;
type Precompiled = readonly (readonly [number, Factory])[];
let precompiled: WeakMap<AnyStructLayout, Precompiled> | undefined;
/** Set while precompiledCodecSource runs: each compile() reports the bodies it generated. */
let recording: Map<AnyStructLayout, string[]> | undefined;

/** `layouts` and every struct they nest, in a fixed order (the same here and in the guest). */
function withNested(layouts: readonly AnyStructLayout[]): AnyStructLayout[] {
  const all = new Set<AnyStructLayout>();
  const walk = (t: ElementType | FlexArrayType): void => {
    if (t.kind === 'struct') {
      if (all.has(t as AnyStructLayout)) return;
      all.add(t as AnyStructLayout);
      for (const f of (t as AnyStructLayout).fields) walk(f.type);
    } else if (t.kind === 'array' || t.kind === 'flex') walk((t as { of: ElementType }).of);
  };
  for (const l of layouts) walk(l);
  return [...all];
}

/** How many bodies `new Function` compiled (not found among the precompiled ones). */
export let bodiesCompiledAtRunTime = 0;

/**
 * Takes the functions precompiledCodecSource(layouts) wrote, for the same `layouts` (undefined:
 * none). Another set of layouts than the one they were made for: none are used.
 */
export function usePrecompiledCodecs(layouts?: readonly AnyStructLayout[], factories?: readonly Precompiled[]): void {
  const all = layouts && withNested(layouts);
  precompiled = all && factories && all.length === factories.length ? new WeakMap(all.map((l, i) => [l, factories[i]!])) : undefined;
}

/**
 * JavaScript source of an array, per struct of `layouts` and the structs they nest, of the
 * functions its compiled codec generates, for usePrecompiledCodecs. Each function is in
 * parentheses, which makes V8 compile it with the script (so a code cache made after a run
 * holds it, called or not).
 */
export function precompiledCodecSource(layouts: readonly AnyStructLayout[]): string {
  const all = withNested(layouts);
  recording = new Map();
  try {
    for (const l of all) compile(l);
    const params = ['h', ...Object.keys(SCOPE)].join(', ');
    // `return function ...;` becomes `return (function ...);`: the inner function compiled eagerly too.
    const eager = (body: string) => body.replace(/^return function /, 'return (function ').replace(/;$/, ');');
    const one = (b: string) => `[${b.length}, (function (${params}) {\n${eager(b)}\n})]`;
    return `[\n${all.map((l) => `[${recording!.get(l)!.map(one).join(', ')}]`).join(',\n')}\n]`;
  } finally {
    recording = undefined;
  }
}

/** A layout's encoder and decoder, generated anew (not the ones compiledCodec keeps). */
export function compile(layout: AnyStructLayout): Compiled {
  const helpers: unknown[] = [];
  const ahead = precompiled?.get(layout);
  const bodies: string[] = [];
  recording?.set(layout, bodies);
  const generated = (body: string) => {
    const made = ahead?.[bodies.length];
    bodies.push(body);
    let factory = made && made[0] === body.length ? made[1] : undefined;
    if (!factory) {
      factory = new Function('h', ...Object.keys(SCOPE), body) as Factory;
      bodiesCompiledAtRunTime++;
    }
    return factory(helpers, ...Object.values(SCOPE));
  };
  const helper = (fn: unknown): string => {
    helpers.push(fn);
    return `h[${helpers.length - 1}]`;
  };
  // Nested struct types are compiled on their own and called (they are few and small).
  const nestedEncode = (t: AnyStructLayout) => helper(compiledCodec(t).encode);
  const nestedDecode = (t: AnyStructLayout) => helper(compiledCodec(t).decode);

  /** Code that checks `v` (defined) and writes it at `o + off`, or returns false. */
  function writeCode(t: ElementType | FlexArrayType, off: number, v: string, depth: number): string {
    const at = `o + ${off}`;
    switch (t.kind) {
      case 'u8': return `if (typeof ${v} !== 'number' || (${v} & 0xff) !== ${v}) return false; b[${at}] = ${v};`;
      case 'u16': return `if (typeof ${v} !== 'number' || (${v} & 0xffff) !== ${v}) return false; writeU16(b, ${at}, ${v});`;
      case 'u32': return `if (typeof ${v} !== 'number' || (${v} >>> 0) !== ${v}) return false; writeU32(b, ${at}, ${v});`;
      case 's32': return `if (typeof ${v} !== 'number' || (${v} | 0) !== ${v}) return false; writeU32(b, ${at}, ${v});`;
      case 'u64':
        // A safe integer is written without making a BigInt.
        return `if (typeof ${v} === 'bigint') { if (${v} < 0n || ${v} > U64_MAX) return false; writeU64(b, ${at}, ${v}); }
          else if (typeof ${v} === 'number' && Number.isSafeInteger(${v}) && ${v} >= 0) writeU64Number(b, ${at}, ${v});
          else return false;`;
      case 'struct':
        return `if (typeof ${v} !== 'object' || ${v} === null || !${nestedEncode(t as AnyStructLayout)}(b, ${at}, ${v})) return false;`;
      case 'array':
      case 'flex': {
        const of = (t as { of: ElementType }).of;
        const max = t.kind === 'array' ? t.length : Infinity;
        const a = `a${depth}`;
        const i = `i${depth}`;
        const e = `e${depth}`;
        // A hole or a missing element makes the interpreted codec skip or throw: not handled here.
        return `if (!Array.isArray(${v}) || ${v}.length > ${max}) return false;
          for (let ${i} = 0, ${a} = ${v}; ${i} < ${a}.length; ${i}++) {
            if (!(${i} in ${a})) return false;
            const ${e} = ${a}[${i}];
            const o${depth + 1} = o;
            { const o = o${depth + 1} + ${off} + ${i} * ${of.size}; ${writeCode(of, 0, e, depth + 1)} }
          }`;
      }
    }
  }

  /** Code that reads the value at `o + off`. */
  function readCode(t: ElementType | FlexArrayType, off: number): string {
    const at = `o + ${off}`;
    switch (t.kind) {
      case 'u8': return `b[${at}]`;
      case 'u16': return `readU16(b, ${at})`;
      case 'u32': return `readU32(b, ${at})`;
      case 's32': return `readS32(b, ${at})`;
      case 'u64': return `readU64(b, ${at})`;
      case 'struct': return `${nestedDecode(t as AnyStructLayout)}(b, ${at})`;
      case 'flex': return '[]';
      case 'array': {
        if (t.length <= 16) return `[${Array.from({ length: t.length }, (_, i) => readCode(t.of, off + i * t.of.size)).join(', ')}]`;
        const readOne = helper(generated(`return function (b, o) { return ${readCode(t.of, 0)}; };`));
        return `readArray(b, ${at}, ${t.length}, ${t.of.size}, ${readOne})`;
      }
    }
  }

  const fields: readonly FieldInfo[] = layout.fields;
  // One pass over the members given, as the interpreted codec makes (same order, so members of a
  // union overwrite each other alike), each dispatched on its name: callers hand in objects of
  // many shapes (a spread of a different union member per IOMMU_TEST_CMD op), so loading every
  // member the layout has by name would be a megamorphic load for each.
  const cases = fields.map((f) => `case ${JSON.stringify(f.name)}: { ${writeCode(f.type, f.offset, 'v', 0)} break; }`);
  const encodeBody = `if (typeof s !== 'object' || s === null || Object.getPrototypeOf(s) !== Object.prototype) return false;
    for (const key in s) {
      const v = s[key];
      if (v === undefined) continue;
      switch (key) {
        ${cases.join('\n        ')}
        default: return false;
      }
    }
    return true;`;
  const decodeBody = `return { ${fields.map((f) => `${JSON.stringify(f.name)}: ${readCode(f.type, f.offset)}`).join(', ')} };`;

  const make = (body: string) => generated(`return function (b, o, s) {\n${body}\n};`);
  return { encode: make(encodeBody) as FastEncoder, decode: make(decodeBody) as FastDecoder };
}
