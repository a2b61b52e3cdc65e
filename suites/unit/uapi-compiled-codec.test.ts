// The compiled struct codec (lib/uapi/compiled-codec.ts) against the
// interpreted one it stands in for, on every layout lib/uapi declares:
// random inputs, valid and not (wrong types, values out of range, unknown
// or misspelt members, two members of one union, arrays too long or with
// holes, short and long buffers), must give the same bytes or the same
// error; random bytes must decode to the same objects, keys in the same order.
import { expect } from 'chai';
import fc from 'fast-check';
import * as U from '../../lib/uapi/index.ts';
import { isStructLayout, withInterpretedCodec, type AnyStructLayout, type ElementType, type FlexArrayType } from '../../lib/uapi/layout.ts';
import { bodiesCompiledAtRunTime, compile, precompiledCodecSource, usePrecompiledCodecs } from '../../lib/uapi/compiled-codec.ts';

const LAYOUTS: AnyStructLayout[] = Object.values(U).filter(isStructLayout);

/** A value for a member: mostly valid, sometimes not. */
function valueOf(t: ElementType | FlexArrayType, depth = 0): fc.Arbitrary<unknown> {
  const junk = fc.oneof(fc.constant(undefined), fc.constant(null), fc.constant('1'), fc.constant(1.5), fc.constant(-1), fc.constant(NaN), fc.constant(true), fc.constant({}));
  switch (t.kind) {
    case 'u8':
    case 'u16':
    case 'u32':
    case 's32': {
      const bits = t.kind === 'u8' ? 8 : t.kind === 'u16' ? 16 : 32;
      const lo = t.kind === 's32' ? -(2 ** 31) : 0;
      const hi = t.kind === 's32' ? 2 ** 31 - 1 : 2 ** bits - 1;
      return fc.oneof({ weight: 6, arbitrary: fc.integer({ min: lo, max: hi }) }, { weight: 1, arbitrary: fc.constantFrom(lo - 1, hi + 1, -0, 2 ** 53, 5n) }, { weight: 1, arbitrary: junk });
    }
    case 'u64':
      return fc.oneof(
        { weight: 4, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) },
        { weight: 3, arbitrary: fc.oneof(fc.nat(), fc.constantFrom(0, 2 ** 32, 2 ** 32 - 1, Number.MAX_SAFE_INTEGER, -0)) },
        { weight: 1, arbitrary: fc.constantFrom(-1n, 2n ** 64n, 2 ** 53, -1, 0.5) },
        { weight: 1, arbitrary: junk },
      );
    case 'struct':
      return depth > 3 ? fc.constant({}) : fc.oneof({ weight: 5, arbitrary: inputOf(t as AnyStructLayout, depth + 1) }, { weight: 1, arbitrary: junk }, { weight: 1, arbitrary: fc.constant([]) });
    case 'array':
    case 'flex': {
      const max = t.kind === 'array' ? t.length : 4;
      const elems = fc.array(valueOf(t.of, depth + 1), { maxLength: max + 1 });
      const holey = elems.map((a) => {
        const b = [...a];
        if (b.length > 1) delete b[0];
        return b;
      });
      return fc.oneof({ weight: 5, arbitrary: elems }, { weight: 1, arbitrary: holey }, { weight: 1, arbitrary: junk });
    }
  }
}

function inputOf(layout: AnyStructLayout, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const members: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of layout.fields) members[f.name] = valueOf(f.type, depth);
  return fc
    .tuple(fc.record(members, { requiredKeys: [] }), fc.option(fc.constantFrom('bogus', 'sizee', '__proto_'), { nil: undefined }))
    .map(([r, extra]) => (extra === undefined ? r : { ...r, [extra]: 1 }));
}

function outcome(run: () => Uint8Array | Record<string, unknown>): { ok: unknown } | { error: string } {
  try {
    return { ok: run() };
  } catch (e) {
    return { error: `${(e as Error).constructor.name}: ${(e as Error).message}` };
  }
}

/** Deep equality that also checks the order of keys (show() and reports print them in that order). */
function sameShape(a: unknown, b: unknown): void {
  expect(a).to.deep.equal(b);
  if (a && typeof a === 'object' && b && typeof b === 'object' && !(a instanceof Uint8Array)) {
    expect(Object.keys(a)).to.deep.equal(Object.keys(b));
    for (const k of Object.keys(a)) sameShape((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]);
  }
}

describe('uapi: the compiled struct codec against the interpreted one', () => {
  it(`finds the layouts (${LAYOUTS.length})`, () => {
    expect(LAYOUTS.length).to.be.greaterThan(40);
    expect(LAYOUTS).to.include(U.iommu_test_cmd);
  });

  for (const layout of LAYOUTS) {
    it(`encodes and decodes struct ${layout.name} alike`, () => {
      fc.assert(
        fc.property(inputOf(layout), fc.option(fc.integer({ min: 0, max: layout.sizeof + 16 }), { nil: undefined }), (values, length) => {
          const opts = length === undefined ? {} : { length };
          const fast = outcome(() => layout.encode(values as never, opts));
          const slow = outcome(() => withInterpretedCodec(() => layout.encode(values as never, opts)));
          sameShape(fast, slow);
        }),
        { numRuns: 150 },
      );
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: layout.sizeof + 24 }), fc.integer({ min: 0, max: 12 }), (bytes, offset) => {
          sameShape(
            outcome(() => layout.decode(bytes, offset)),
            outcome(() => withInterpretedCodec(() => layout.decode(bytes, offset))),
          );
        }),
        { numRuns: 100 },
      );
    });
  }

  it('encodes a u64 given as a safe number and as a bigint to the same bytes, without a BigInt for the number', () => {
    const a = U.iommu_ioas_map.encode({ iova: 2 ** 52 + 3, length: 0xffff_ffff });
    const b = U.iommu_ioas_map.encode({ iova: BigInt(2 ** 52 + 3), length: 0xffff_ffffn });
    expect([...a]).to.deep.equal([...b]);
  });

  it('still names a misspelt member and a value out of range, as the interpreted codec does', () => {
    expect(() => U.iommu_ioas_map.encode({ iovaa: 1 } as never)).to.throw(TypeError, /struct iommu_ioas_map has no member iovaa/);
    expect(() => U.iommu_ioas_map.encode({ ioas_id: 2 ** 32 })).to.throw(RangeError, /iommu_ioas_map\.ioas_id: 4294967296 is out of u32 range/);
    expect(() => U.iommu_test_cmd.encode({ access_rw: { iova: -1n } } as never)).to.throw(RangeError, /iommu_test_cmd\.access_rw\.iova: -1 is out of u64 range/);
  });
});

// The guest bundle's codecs, generated when it is built (lib/vm/guest-bundle.ts) instead of by
// `new Function` at the guest's start: the same code, found by its text.
describe('uapi: the compiled codecs made ahead of time for the guest bundle', () => {
  it('covers every body the layouts generate, and its functions encode and decode as those made at run time', () => {
    const source = precompiledCodecSource(LAYOUTS);
    const factories = new Function(`return ${source}`)() as Parameters<typeof usePrecompiledCodecs>[1];
    expect(factories!.length).to.be.at.least(LAYOUTS.length);
    const atRunTime = LAYOUTS.map(compile);
    usePrecompiledCodecs(LAYOUTS, factories);
    let ahead: ReturnType<typeof compile>[];
    const compiledBefore = bodiesCompiledAtRunTime;
    try {
      ahead = LAYOUTS.map(compile);
    } finally {
      usePrecompiledCodecs(undefined);
    }
    expect(bodiesCompiledAtRunTime, 'bodies not found among the precompiled').to.equal(compiledBefore);
    // Made for other layouts: not used.
    usePrecompiledCodecs(LAYOUTS.slice(0, 1), factories);
    try {
      compile(LAYOUTS[0]!);
    } finally {
      usePrecompiledCodecs(undefined);
    }
    expect(bodiesCompiledAtRunTime).to.be.greaterThan(compiledBefore);
    LAYOUTS.forEach((layout, i) => {
      const size = layout.sizeof + 24;
      fc.assert(
        fc.property(inputOf(layout), fc.uint8Array({ minLength: size, maxLength: size }), (values, bytes) => {
          const a = new Uint8Array(size);
          const b = new Uint8Array(size);
          const okA = outcome(() => (atRunTime[i]!.encode(a, 0, values) ? a : new Uint8Array()));
          const okB = outcome(() => (ahead[i]!.encode(b, 0, values) ? b : new Uint8Array()));
          sameShape(okB, okA);
          sameShape(ahead[i]!.decode(bytes, 0), atRunTime[i]!.decode(bytes, 0));
        }),
        { numRuns: 30 },
      );
    });
  });
});
