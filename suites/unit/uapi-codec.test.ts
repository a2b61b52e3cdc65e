// The struct codec (lib/uapi/layout.ts) and the VFIO capability chain
// decoder: round trips, hand-checked offsets, the kernel's size rules, unions,
// flexible arrays. The offsets are confirmed against C by layout.test.ts.
import { expect } from 'chai';
import {
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  anonymousStruct,
  anonymousUnion,
  array,
  decodeType1InfoCaps,
  iommu_hw_info,
  iommu_ioas_map,
  iommu_iova_range,
  iommu_option,
  iommu_test_cmd,
  MIN_SIZE,
  IOMMU_TEST_CMD_OP,
  pad,
  struct,
  u16,
  u32,
  u64,
  u8,
  vfio_device_bind_iommufd,
  vfio_iommu_type1_dirty_bitmap,
  vfio_iommu_type1_dirty_bitmap_get,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_iommu_type1_info,
  vfio_iommu_type1_info_cap_iova_range,
  vfio_iommu_type1_info_cap_migration,
  vfio_iommu_type1_info_dma_avail,
  vfio_info_cap_header,
} from '../../lib/uapi/index.ts';

const U64_MAX = 0xffff_ffff_ffff_ffffn;

describe('uapi: struct codec', () => {
  describe('round trips', () => {
    it('encodes and decodes iommu_ioas_map with u64 at the full 64-bit range', () => {
      const values = { size: 40, flags: 7, ioas_id: 0xffff_ffff, __reserved: 1, user_va: U64_MAX, length: 1n << 63n, iova: 1n };
      expect(iommu_ioas_map.decode(iommu_ioas_map.encode(values))).to.deep.equal(values);
    });

    it('accepts a u64 as a safe number and decodes it as bigint', () => {
      const bytes = iommu_ioas_map.encode({ iova: 0x1000, length: Number.MAX_SAFE_INTEGER });
      expect(iommu_ioas_map.read(bytes, 'iova')).to.equal(0x1000n);
      expect(iommu_ioas_map.read(bytes, 'length')).to.equal(BigInt(Number.MAX_SAFE_INTEGER));
    });

    it('stores little-endian bytes at the C offsets', () => {
      const bytes = iommu_ioas_map.encode({ ioas_id: 0x11223344, iova: 0x0102030405060708n });
      expect([...bytes.subarray(8, 12)]).to.deep.equal([0x44, 0x33, 0x22, 0x11]);
      expect([...bytes.subarray(32, 40)]).to.deep.equal([8, 7, 6, 5, 4, 3, 2, 1]);
    });

    it('round-trips u8 arrays, u16 and s32 members', () => {
      const hw = iommu_hw_info.decode(iommu_hw_info.encode({ out_max_pasid_log2: 20, __reserved: [1, 2, 3] }));
      expect(hw.__reserved).to.deep.equal([1, 2, 3]);
      expect(hw.out_max_pasid_log2).to.equal(20);
      expect(iommu_option.decode(iommu_option.encode({ op: 0xffff })).op).to.equal(0xffff);
      const bind = vfio_device_bind_iommufd.encode({ iommufd: -1 });
      expect(vfio_device_bind_iommufd.read(bind, 'iommufd')).to.equal(-1);
      expect([...bind.subarray(8, 12)]).to.deep.equal([0xff, 0xff, 0xff, 0xff]);
    });

    it('encodes and decodes an array of elements for a separate user buffer', () => {
      const ranges = [
        { start: 0n, last: 0xfffn },
        { start: 1n << 40n, last: U64_MAX },
      ];
      const bytes = iommu_iova_range.encodeArray(ranges);
      expect(bytes.length).to.equal(32);
      expect(iommu_iova_range.decodeArray(bytes)).to.deep.equal(ranges);
    });
  });

  describe('value checks', () => {
    it('rejects out-of-range and non-integer values, naming the member', () => {
      expect(() => iommu_ioas_map.encode({ flags: 2 ** 32 })).to.throw(RangeError, /iommu_ioas_map\.flags/);
      expect(() => iommu_ioas_map.encode({ flags: -1 })).to.throw(RangeError, /flags/);
      expect(() => iommu_ioas_map.encode({ iova: U64_MAX + 1n })).to.throw(RangeError, /iova/);
      expect(() => iommu_ioas_map.encode({ iova: -1n })).to.throw(RangeError, /iova/);
      expect(() => iommu_ioas_map.encode({ iova: 2 ** 53 })).to.throw(TypeError, /safe integer/);
      expect(() => iommu_ioas_map.encode({ flags: 1.5 })).to.throw(TypeError);
      // @ts-expect-error a bigint is for u64 members only
      expect(() => iommu_ioas_map.encode({ flags: 1n })).to.throw(TypeError);
      expect(() => vfio_device_bind_iommufd.encode({ iommufd: 2 ** 31 })).to.throw(RangeError, /s32/);
    });

    it('rejects a misspelt member instead of encoding zero', () => {
      // @ts-expect-error no such member
      expect(() => iommu_ioas_map.encode({ iovaa: 1 })).to.throw(TypeError, /no member iovaa/);
    });

    it('rejects a fixed array with too many elements', () => {
      expect(() => iommu_hw_info.encode({ __reserved: [1, 2, 3, 4] })).to.throw(RangeError, /4 elements/);
    });
  });

  describe('hand-checked layouts', () => {
    it('iommu_ioas_map: 40 bytes, 64-bit members from 16', () => {
      expect(iommu_ioas_map.sizeof).to.equal(40);
      expect([iommu_ioas_map.offsetOf('user_va'), iommu_ioas_map.offsetOf('length'), iommu_ioas_map.offsetOf('iova')]).to.deep.equal([16, 24, 32]);
      expect(iommu_ioas_map.offsetEnd('iova')).to.equal(40);
    });

    it('iommu_option: u16 op and __reserved packed before object_id', () => {
      expect(['op', '__reserved', 'object_id', 'val64'].map((f) => iommu_option.offsetOf(f as 'op'))).to.deep.equal([8, 10, 12, 16]);
      expect(iommu_option.sizeOf('op')).to.equal(2);
    });

    it('iommu_hw_info: u8 and u8[3] fill out to out_capabilities at 32', () => {
      expect(iommu_hw_info.offsetOf('out_max_pasid_log2')).to.equal(28);
      expect(iommu_hw_info.offsetOf('__reserved')).to.equal(29);
      expect(iommu_hw_info.sizeOf('__reserved')).to.equal(3);
      expect(iommu_hw_info.offsetOf('out_capabilities')).to.equal(32);
      expect(iommu_hw_info.sizeof).to.equal(40);
    });

    it('vfio_iommu_type1_info_cap_migration: implicit padding after flags', () => {
      expect(vfio_iommu_type1_info_cap_migration.offsetOf('flags')).to.equal(8);
      expect(vfio_iommu_type1_info_cap_migration.offsetOf('pgsize_bitmap')).to.equal(16);
      expect(vfio_iommu_type1_info_cap_migration.sizeof).to.equal(32);
    });

    it('iommu_test_cmd: 72 bytes, union at 16, last at 64, min_size 68', () => {
      expect(iommu_test_cmd.sizeof).to.equal(72);
      expect(iommu_test_cmd.offsetOf('mock_domain.out_stdev_id')).to.equal(16);
      expect(iommu_test_cmd.offsetOf('dirty.iova')).to.equal(24);
      expect(iommu_test_cmd.offsetOf('dirty.out_nr_dirty')).to.equal(56);
      expect(iommu_test_cmd.offsetOf('last')).to.equal(64);
      expect(IOMMU_TEST_CMD_OP.minSize).to.equal(68);
    });

    it('MIN_SIZE follows the kernel table: hwpt_alloc ends at __reserved, hw_info at __reserved[3]', () => {
      expect(MIN_SIZE.IOMMU_HWPT_ALLOC).to.equal(24);
      expect(MIN_SIZE.IOMMU_GET_HW_INFO).to.equal(32);
      expect(MIN_SIZE.IOMMU_IOAS_MAP).to.equal(40);
      expect(MIN_SIZE.IOMMU_VFIO_IOAS).to.equal(12);
    });

    it('lists every member with its offset, size and kind', () => {
      expect(iommu_option.fields.map((f) => [f.name, f.offset, f.size, f.kind])).to.deep.equal([
        ['size', 0, 4, 'u32'],
        ['option_id', 4, 4, 'u32'],
        ['op', 8, 2, 'u16'],
        ['__reserved', 10, 2, 'u16'],
        ['object_id', 12, 4, 'u32'],
        ['val64', 16, 8, 'u64'],
      ]);
    });

    it('computes packed structs, explicit padding and tail padding', () => {
      const natural = struct('t_natural', { a: u8, b: u64, c: u16 });
      const packed = struct('t_packed', { a: u8, b: u64, c: u16 }, { packed: true });
      const padded = struct('t_padded', { a: u8, gap: pad(3), b: u32 });
      expect([natural.offsetOf('b'), natural.offsetOf('c'), natural.sizeof, natural.align]).to.deep.equal([8, 16, 24, 8]);
      expect([packed.offsetOf('b'), packed.offsetOf('c'), packed.sizeof, packed.align]).to.deep.equal([1, 9, 11, 1]);
      expect(padded.fields.map((f) => f.name)).to.deep.equal(['a', 'b']);
      expect(padded.offsetOf('b')).to.equal(4);
    });
  });

  describe('size rules (copy_struct_from_user)', () => {
    it('by default makes exactly sizeof bytes and sets size to sizeof', () => {
      const bytes = iommu_ioas_map.encode({});
      expect(bytes.length).to.equal(40);
      expect(iommu_ioas_map.read(bytes, 'size')).to.equal(40);
    });

    it('makes a short struct: truncated bytes, size = the short length', () => {
      const full = iommu_ioas_map.encode({ flags: 3, ioas_id: 9, user_va: 0x1234n }, { length: 40 });
      const short = iommu_ioas_map.encode({ flags: 3, ioas_id: 9, user_va: 0x1234n }, { length: 20 });
      expect(short.length).to.equal(20);
      expect(iommu_ioas_map.read(short, 'size')).to.equal(20);
      expect([...short.subarray(4)]).to.deep.equal([...full.subarray(4, 20)]);
    });

    it('makes a long struct with a zero tail', () => {
      const bytes = iommu_ioas_map.encode({ iova: U64_MAX }, { length: 48 });
      expect(bytes.length).to.equal(48);
      expect(iommu_ioas_map.read(bytes, 'size')).to.equal(48);
      expect([...bytes.subarray(40)]).to.deep.equal(new Array(8).fill(0));
    });

    it('makes a long struct with a non-zero tail, alone or inside a longer length', () => {
      const tailOnly = iommu_ioas_map.encode({}, { tail: [0, 0, 1] });
      expect(tailOnly.length).to.equal(43);
      expect(iommu_ioas_map.read(tailOnly, 'size')).to.equal(43);
      expect([...tailOnly.subarray(40)]).to.deep.equal([0, 0, 1]);
      const padded = iommu_ioas_map.encode({}, { length: 48, tail: new Uint8Array([0xaa]) });
      expect([...padded.subarray(40)]).to.deep.equal([0xaa, 0, 0, 0, 0, 0, 0, 0]);
    });

    it('rejects a tail that does not fit in the length asked', () => {
      expect(() => iommu_ioas_map.encode({}, { length: 41, tail: [1, 2] })).to.throw(RangeError, /tail/);
    });

    it('keeps an explicit size, so a test can lie about it', () => {
      expect(iommu_ioas_map.read(iommu_ioas_map.encode({ size: 7 }), 'size')).to.equal(7);
      expect(iommu_ioas_map.read(iommu_ioas_map.encode({ size: 0 }, { length: 48 }), 'size')).to.equal(0);
    });

    it('fills a leading argsz the same way, and only a leading size/argsz', () => {
      expect(vfio_iommu_type1_dma_map.sizeField).to.equal('argsz');
      expect(vfio_iommu_type1_dma_map.read(vfio_iommu_type1_dma_map.encode({ size: 4096n }), 'argsz')).to.equal(32);
      expect(vfio_iommu_type1_dma_map.read(vfio_iommu_type1_dma_map.encode({ size: 4096n }), 'size')).to.equal(4096n);
      expect(iommu_iova_range.sizeField).to.equal(undefined);
      expect([...iommu_iova_range.encode({})]).to.deep.equal(new Array(16).fill(0));
    });

    it('decodes a short buffer with the missing bytes as zero, as the kernel reads it', () => {
      const short = iommu_ioas_map.encode({ flags: 1, iova: 5n }, { length: 12 });
      expect(iommu_ioas_map.decode(short)).to.include({ size: 12, flags: 1, iova: 0n });
    });

    it('reads and writes members of a live buffer, refusing members outside it', () => {
      const bytes = iommu_ioas_map.encode({});
      iommu_ioas_map.write(bytes, 'iova', 0xdead_beef_0000n);
      expect(iommu_ioas_map.read(bytes, 'iova')).to.equal(0xdead_beef_0000n);
      const short = iommu_ioas_map.encode({}, { length: 20 });
      expect(() => iommu_ioas_map.read(short, 'iova')).to.throw(RangeError, /outside/);
      expect(() => iommu_ioas_map.write(short, 'iova', 1n)).to.throw(RangeError, /outside/);
    });

    it('reads and decodes at an offset into a larger buffer', () => {
      const bytes = new Uint8Array(64);
      bytes.set(iommu_iova_range.encode({ start: 1n, last: 2n }), 8);
      expect(iommu_iova_range.decode(bytes, 8)).to.deep.equal({ start: 1n, last: 2n });
      expect(iommu_iova_range.read(bytes, 'last', 8)).to.equal(2n);
    });
  });

  describe('anonymous unions', () => {
    it('puts every member at the union offset, accessible by the C name', () => {
      const bytes = iommu_test_cmd.encode({ op: 12, id: 3, mock_domain_flags: { dev_flags: 2 }, last: 0x55 });
      const cmd = iommu_test_cmd.decode(bytes);
      expect(cmd.mock_domain_flags).to.deep.equal({ out_stdev_id: 0, out_hwpt_id: 0, out_idev_id: 0, dev_flags: 2 });
      expect(cmd.last).to.equal(0x55);
      // Alternatives overlap: check_iotlb.iotlb shares bytes 20..23 with mock_domain.out_hwpt_id.
      iommu_test_cmd.write(bytes, 'mock_domain.out_hwpt_id', 77);
      expect(iommu_test_cmd.read(bytes, 'check_iotlb.iotlb')).to.equal(77);
      expect(iommu_test_cmd.decode(bytes).add_reserved.start).to.equal((77n << 32n) | 0n);
    });

    it('writes alternatives in the order given, the later overwriting the earlier', () => {
      const cmd = iommu_test_cmd.decode(iommu_test_cmd.encode({ add_reserved: { start: U64_MAX }, memory_limit: { limit: 12 } }));
      expect(cmd.add_reserved.start).to.equal(0xffff_ffff_0000_000cn);
    });

    it('sizes a union to its largest member, rounded to its alignment', () => {
      const s = struct('t_union', { a: u8, u: anonymousUnion({ x: anonymousStruct({ p: u64 }), y: array(u8, 9) }), z: u8 });
      expect([s.offsetOf('x'), s.offsetOf('y'), s.offsetOf('z'), s.sizeof]).to.deep.equal([8, 8, 24, 32]);
    });
  });

  describe('flexible array members', () => {
    it('encodes elements after the struct and counts them in the buffer length', () => {
      const ranges = [
        { start: 0n, end: 0xfffn },
        { start: 0x10000n, end: U64_MAX },
      ];
      const bytes = vfio_iommu_type1_info_cap_iova_range.encode({ header: { id: 1, version: 1 }, nr_iovas: 2, iova_ranges: ranges });
      expect(vfio_iommu_type1_info_cap_iova_range.sizeof).to.equal(16);
      expect(vfio_iommu_type1_info_cap_iova_range.offsetOf('iova_ranges')).to.equal(16);
      expect(vfio_iommu_type1_info_cap_iova_range.sizeOf('iova_ranges')).to.equal(0);
      expect(bytes.length).to.equal(48);
      expect(vfio_iommu_type1_info_cap_iova_range.decode(bytes).iova_ranges).to.deep.equal(ranges);
    });

    it('decodes as many elements as the count member says, and no more than fit whole', () => {
      const two = vfio_iommu_type1_info_cap_iova_range.encode({ nr_iovas: 1, iova_ranges: [{ start: 1n }, { start: 2n }] });
      expect(vfio_iommu_type1_info_cap_iova_range.decode(two).iova_ranges).to.deep.equal([{ start: 1n, end: 0n }]);
      const lying = vfio_iommu_type1_info_cap_iova_range.encode({ nr_iovas: 9, iova_ranges: [{ start: 1n }] }, { length: 40 });
      expect(vfio_iommu_type1_info_cap_iova_range.decode(lying).iova_ranges).to.have.length(1);
    });

    it('counts a u8 data[] in argsz, and a nested struct given as the tail', () => {
      const unmap = vfio_iommu_type1_dma_unmap.encode({ iova: 0x1000n, data: [1, 2, 3] });
      expect(unmap.length).to.equal(27);
      expect(vfio_iommu_type1_dma_unmap.read(unmap, 'argsz')).to.equal(27);
      expect(vfio_iommu_type1_dma_unmap.decode(unmap).data).to.deep.equal([1, 2, 3]);
      const get = vfio_iommu_type1_dirty_bitmap_get.encode({ iova: 0n, size: 0x10000n, bitmap: { pgsize: 4096n, size: 8n, data: 0x7f00_0000_0000n } });
      const dirty = vfio_iommu_type1_dirty_bitmap.encode({ flags: 4 }, { tail: get });
      expect(dirty.length).to.equal(8 + 40);
      expect(vfio_iommu_type1_dirty_bitmap.read(dirty, 'argsz')).to.equal(48);
      expect(vfio_iommu_type1_dirty_bitmap_get.decode(dirty, 8).bitmap.data).to.equal(0x7f00_0000_0000n);
    });

    it('must be the last member', () => {
      expect(() => struct('t_bad', { n: u32, a: { kind: 'flex', of: u32, countField: undefined, size: 0, align: 4 }, b: u32 })).to.throw(TypeError, /last/);
    });
  });
});

// ---------------------------------------------------------------- capability chain

/** An info buffer: vfio_iommu_type1_info then the given caps, each linked to the next. */
function infoWithCaps(caps: Uint8Array[], firstOffset = vfio_iommu_type1_info.sizeof): Uint8Array {
  const total = firstOffset + caps.reduce((n, c) => n + c.length, 0);
  const buf = new Uint8Array(total);
  buf.set(vfio_iommu_type1_info.encode({ argsz: total, flags: VFIO_IOMMU_INFO_CAPS, cap_offset: caps.length ? firstOffset : 0 }));
  let at = firstOffset;
  caps.forEach((cap, i) => {
    buf.set(cap, at);
    const next = i + 1 < caps.length ? at + cap.length : 0;
    vfio_info_cap_header.write(buf, 'next', next, at);
    at += cap.length;
  });
  return buf;
}

const iovaCap = () =>
  vfio_iommu_type1_info_cap_iova_range.encode({
    header: { id: VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: 1 },
    nr_iovas: 2,
    iova_ranges: [
      { start: 0n, end: 0xfee0_0000n - 1n },
      { start: 0xfef0_0000n, end: (1n << 48n) - 1n },
    ],
  });
const migrationCap = () =>
  vfio_iommu_type1_info_cap_migration.encode({
    header: { id: VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, version: 1 },
    pgsize_bitmap: 0x1000n,
    max_dirty_bitmap_size: 1n << 31n,
  });
const dmaAvailCap = () => vfio_iommu_type1_info_dma_avail.encode({ header: { id: VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version: 1 }, avail: 65535 });

describe('uapi: VFIO_IOMMU_GET_INFO capability chain', () => {
  it('decodes iova_range (with its ranges), migration, dma_avail and keeps unknown ids raw', () => {
    const unknown = vfio_info_cap_header.encode({ id: 0x7777, version: 3 }, { tail: [9, 9, 9, 9] });
    const buf = infoWithCaps([iovaCap(), migrationCap(), unknown, dmaAvailCap()]);
    const chain = decodeType1InfoCaps(buf);
    if (!chain.ok) expect.fail(chain.message);
    expect(chain.caps.map((c) => [c.kind, c.offset])).to.deep.equal([
      ['iova_range', 24],
      ['migration', 72],
      ['unknown', 104],
      ['dma_avail', 116],
    ]);
    const [iova, migration, raw, avail] = chain.caps;
    if (iova?.kind !== 'iova_range' || migration?.kind !== 'migration' || raw?.kind !== 'unknown' || avail?.kind !== 'dma_avail') {
      return expect.fail('caps of the wrong kinds');
    }
    expect(iova.nr_iovas).to.equal(2);
    expect(iova.iova_ranges[1]).to.deep.equal({ start: 0xfef0_0000n, end: (1n << 48n) - 1n });
    expect(migration.max_dirty_bitmap_size).to.equal(1n << 31n);
    expect(raw.header).to.deep.equal({ id: 0x7777, version: 3, next: 116 });
    expect([...raw.bytes.subarray(8)]).to.deep.equal([9, 9, 9, 9]);
    expect(avail.avail).to.equal(65535);
  });

  it('gives no caps when cap_offset is 0', () => {
    expect(decodeType1InfoCaps(infoWithCaps([]))).to.deep.equal({ ok: true, caps: [] });
  });

  it('reports a looping chain instead of looping forever', () => {
    const buf = infoWithCaps([dmaAvailCap(), dmaAvailCap()]);
    vfio_info_cap_header.write(buf, 'next', 24, 36); // the second cap points back at the first
    const chain = decodeType1InfoCaps(buf);
    expect(chain).to.include({ ok: false, error: 'loop', offset: 24 });
    expect(chain.caps).to.have.length(2);
  });

  it('reports a cap that points at itself', () => {
    const buf = infoWithCaps([dmaAvailCap()]);
    vfio_info_cap_header.write(buf, 'next', 24, 24);
    expect(decodeType1InfoCaps(buf)).to.include({ ok: false, error: 'loop' });
  });

  it('reports offsets past the buffer, caps cut short, and offsets inside the info struct', () => {
    const past = infoWithCaps([dmaAvailCap()]);
    vfio_info_cap_header.write(past, 'next', 1000, 24);
    expect(decodeType1InfoCaps(past)).to.include({ ok: false, error: 'out_of_bounds', offset: 1000 });

    const cut = infoWithCaps([migrationCap()]).subarray(0, 24 + 20);
    expect(decodeType1InfoCaps(cut)).to.include({ ok: false, error: 'out_of_bounds', offset: 24 });

    const lyingCount = infoWithCaps([iovaCap()]);
    vfio_iommu_type1_info_cap_iova_range.write(lyingCount, 'nr_iovas', 3, 24);
    expect(decodeType1InfoCaps(lyingCount)).to.include({ ok: false, error: 'out_of_bounds' });

    const inside = infoWithCaps([dmaAvailCap()]);
    vfio_iommu_type1_info.write(inside, 'cap_offset', 8);
    expect(decodeType1InfoCaps(inside)).to.include({ ok: false, error: 'overlaps_info', offset: 8 });

    expect(decodeType1InfoCaps(new Uint8Array(10))).to.include({ ok: false, error: 'truncated' });
  });
});
