// The struct codec's fast path: for each layout, an encoder and a decoder
// generated once (new Function) with every member's offset and type written
// into the code, instead of walking the layout member by member, with a Map
// lookup and a closure per member, on every call. Under TCG each JS call
// costs ~10x its native cost, and the lockstep encodes and decodes ~10^5
// structs a run.
//
// The fast encoder handles only input the interpreted codec (layout.ts)
// accepts without question: a plain object whose every defined member is
// known, each value of the right type and in range, at most one member per
// union. On anything else it returns false and the caller runs the
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

function compile(layout: AnyStructLayout): Compiled {
  const helpers: unknown[] = [];
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
      case 'u16': return `if (typeof ${v} !== 'number' || (${v} & 0xffff) !== ${v}) return false; B.writeU16(b, ${at}, ${v});`;
      case 'u32': return `if (typeof ${v} !== 'number' || (${v} >>> 0) !== ${v}) return false; B.writeU32(b, ${at}, ${v});`;
      case 's32': return `if (typeof ${v} !== 'number' || (${v} | 0) !== ${v}) return false; B.writeU32(b, ${at}, ${v});`;
      case 'u64':
        // A safe integer is written without making a BigInt.
        return `if (typeof ${v} === 'bigint') { if (${v} < 0n || ${v} > U64_MAX) return false; B.writeU64(b, ${at}, ${v}); }
          else if (typeof ${v} === 'number' && Number.isSafeInteger(${v}) && ${v} >= 0) B.writeU64Number(b, ${at}, ${v});
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
      case 'u16': return `B.readU16(b, ${at})`;
      case 'u32': return `B.readU32(b, ${at})`;
      case 's32': return `B.readS32(b, ${at})`;
      case 'u64': return `B.readU64(b, ${at})`;
      case 'struct': return `${nestedDecode(t as AnyStructLayout)}(b, ${at})`;
      case 'flex': return '[]';
      case 'array': {
        if (t.length <= 16) return `[${Array.from({ length: t.length }, (_, i) => readCode(t.of, off + i * t.of.size)).join(', ')}]`;
        const readOne = helper(new Function('b', 'o', 'h', 'B', `return ${readCode(t.of, 0)};`));
        return `readArray(b, ${at}, ${t.length}, ${t.of.size}, ${readOne}, h, B)`;
      }
    }
  }

  const fields: readonly FieldInfo[] = layout.fields;
  // Members that share an offset through an anonymous union: at most one of each group may be given.
  const groupOf = new Map<string, string>();
  for (const [member, type] of Object.entries(layout.spec as Spec)) {
    if (type.kind === 'union') for (const m of Object.keys(type.members as object)) groupOf.set(m, `u_${member.replace(/\W/g, '_')}`);
  }
  const groups = [...new Set(groupOf.values())];

  const enc: string[] = ['let v, n = 0;', ...groups.map((g) => `let ${g} = 0;`)];
  fields.forEach((f) => {
    const group = groupOf.get(f.name);
    enc.push(`v = s[${JSON.stringify(f.name)}];`);
    enc.push(`if (v !== undefined) { ${group ? `if (++${group} > 1) return false; ` : ''}${writeCode(f.type, f.offset, 'v', 0)} n++; }`);
  });
  // Every defined own member must be one of the layout's (a misspelt one is the interpreted codec's TypeError).
  enc.push('let k = 0; for (const key in s) if (s[key] !== undefined) k++;', 'return k === n;');
  const encodeBody = `if (typeof s !== 'object' || s === null || Object.getPrototypeOf(s) !== Object.prototype) return false;\n${enc.join('\n')}`;
  const decodeBody = `return { ${fields.map((f) => `${JSON.stringify(f.name)}: ${readCode(f.type, f.offset)}`).join(', ')} };`;

  const readArray = (b: Uint8Array, o: number, length: number, size: number, readOne: (b: Uint8Array, o: number, h: unknown[], B: unknown) => unknown, h: unknown[], B: unknown) => {
    const out: unknown[] = [];
    for (let i = 0; i < length; i++) out.push(readOne(b, o + i * size, h, B));
    return out;
  };
  const make = (body: string) => new Function('h', 'U64_MAX', 'readArray', 'B', `return function (b, o, s) {\n${body}\n};`)(helpers, U64_MAX, readArray, Bytes);
  return { encode: make(encodeBody) as FastEncoder, decode: make(decodeBody) as FastDecoder };
}
