// The audit's catalogue: small scenarios of the VFIO container uAPI, each run
// on every backend (real type1, iommufd's compat with the same device, iommufd's
// compat on a mock domain) and, separately, on the model of that backend. A
// scenario's body talks to a ScenarioContext, which issues the ioctls on the
// target and records each one as a Step; the body is the same code for the
// kernel and the model, and for every backend.
//
// Conventions: IOVAs start at AUDIT_IOVA (32 MiB: inside the mock aperture
// [16 MiB, 2 GiB) and VT-d's); mappings are 64 KiB of the shared read-write
// buffer unless a scenario says otherwise. The LAST step of a scenario is
// the one it audits.
import * as U from '../uapi/index.ts';
import { hex, outValue, StepRecorder } from './record.ts';
import { AUDIT_IOVA, NATIVE_NO_CONTAINER, NoNativeEquivalent, type AuditMemory, type AuditTarget, type NativeIoas, type RoleResult } from './targets.ts';
import type { BackendId, OutValue, Step } from './types.ts';
import { PGSIZE_BITS_UNKNOWN } from '../model/type1-platform.ts';

const KiB = 1024n;
const SZ = 64n * KiB;
const PAGE = 4n * KiB;
const U64_MAX = (1n << 64n) - 1n;
const READ = U.VFIO_DMA_MAP_FLAG_READ;
const WRITE = U.VFIO_DMA_MAP_FLAG_WRITE;
const RW = READ | WRITE;
const A = AUDIT_IOVA;
/** The IOVA window GET_INFO's ranges are checked against (normalised): 16 MiB from AUDIT_IOVA. */
const WINDOW = { start: A, last: A + 16n * 1024n * KiB - 1n };

/** What a scenario needs before its first step. */
export type Setup =
  /** A fresh container; the group is open but not attached (compat-mock: /dev/iommu with no compat IOAS). */
  | 'raw'
  /** The group attached (compat-mock: a compat IOAS); no SET_IOMMU, no device open, so no IOMMU domain on compat. */
  | 'attached'
  /** attached + SET_IOMMU(TYPE1v2), no device open. */
  | 'type1v2-no-device'
  /** attached + SET_IOMMU(TYPE1v2) + the device open (compat-mock: a mock domain on the compat IOAS): the usual VMM state. */
  | 'type1v2'
  /** The same with SET_IOMMU(TYPE1), the v1 semantics. */
  | 'type1';

export const SETUP_DESCRIPTIONS: Record<Setup, string> = {
  raw: 'fresh container, group open but not attached (compat-mock: /dev/iommu without a compat IOAS; native: /dev/iommu and the device cdev open, not bound)',
  attached: 'group attached to the container (compat-mock: a compat IOAS set; native: device bound, IOAS allocated), no SET_IOMMU, device not open',
  'type1v2-no-device': 'group attached, SET_IOMMU(VFIO_TYPE1v2_IOMMU), device not open (compat-mock: no mock domain; native: device bound, IOAS allocated, not attached)',
  type1v2: 'group attached, SET_IOMMU(VFIO_TYPE1v2_IOMMU), device open (compat-mock: compat IOAS with a mock domain; native: device bound and attached to its IOAS)',
  type1: 'group attached, SET_IOMMU(VFIO_TYPE1_IOMMU), device open (compat-mock: compat IOAS with a mock domain; native: none, v1 has no native equivalent)',
};

export interface Scenario {
  /** Stable, kebab-case, grouped by area: 'map-dma.argsz-short'. */
  id: string;
  area: string;
  title: string;
  setup: Setup;
  /** The reason type1 and compat-mock are not compared (types.ts ScenarioResult.platformDependent). */
  platformDependent?: string;
  /**
   * Backends the scenario cannot run on, with the reason: the guest makes no test of these pairs and the
   * report shows the reason in their cells (native: see nativeNotApplicable, which adds the area's and v1's;
   * suites/unit/audit-catalogue.test.ts checks native's against a dry run of the native model).
   */
  notApplicable?: Partial<Record<BackendId, string>>;
  /**
   * native, for a scenario not applicable there: its steps do have native counterparts (the native model
   * runs them), but they would not audit what the scenario audits; says what they would be instead.
   */
  nativeStepsOnly?: string;
  /** native's own body where the scenario's would not say the same thing there (default: the scenario's body). */
  nativeBody?(c: ScenarioContext): void;
  /** Module parameters set for the scenario (restored after it). */
  env?: { dmaEntryLimit?: number };
  body(c: ScenarioContext): void;
}

export class SetupError extends Error {
  override name = 'SetupError';
  constructor(
    message: string,
    /** The setup step that failed (its op) and its errno. */
    readonly step = '',
    readonly errno = 0,
  ) {
    super(message);
  }
}

const NO_GROUP_ON_MOCK = 'compat-mock has no VFIO group (the mock device is bound to the iommufd directly)';

export type InfoField = 'argsz' | 'flags' | 'iova_pgsizes' | 'cap_offset' | 'caps' | 'dma_avail' | 'iova_ranges' | 'migration' | 'caps_area';

const EXTENSION_NAMES: Record<number, string> = {
  [U.VFIO_TYPE1_IOMMU]: 'VFIO_TYPE1_IOMMU',
  [U.VFIO_SPAPR_TCE_IOMMU]: 'VFIO_SPAPR_TCE_IOMMU',
  [U.VFIO_TYPE1v2_IOMMU]: 'VFIO_TYPE1v2_IOMMU',
  [U.VFIO_DMA_CC_IOMMU]: 'VFIO_DMA_CC_IOMMU',
  [U.VFIO_EEH]: 'VFIO_EEH',
  [U.VFIO_TYPE1_NESTING_IOMMU]: 'VFIO_TYPE1_NESTING_IOMMU',
  [U.VFIO_SPAPR_TCE_v2_IOMMU]: 'VFIO_SPAPR_TCE_v2_IOMMU',
  [U.VFIO_NOIOMMU_IOMMU]: 'VFIO_NOIOMMU_IOMMU',
  [U.VFIO_UNMAP_ALL]: 'VFIO_UNMAP_ALL',
  [U.VFIO_UPDATE_VADDR]: 'VFIO_UPDATE_VADDR',
};
const extensionName = (n: number) => EXTENSION_NAMES[n] ?? String(n);

/** The calls a scenario body makes: each issues one ioctl on the target and records it as a step. */
export class ScenarioContext {
  constructor(
    readonly target: AuditTarget,
    readonly rec: StepRecorder,
    readonly mem: AuditMemory,
  ) {}

  get backend(): BackendId {
    return this.target.backend;
  }

  // ---------------------------------------------------------------- memory and IOVAs

  /** An address in the read-write buffer. */
  rw(offset = 0n): bigint {
    return this.mem.rw.address + offset;
  }
  /** An address in the read-only buffer. */
  ro(offset = 0n): bigint {
    return this.mem.ro.address + offset;
  }
  /** An address in the PROT_NONE mapping. */
  none(offset = 0n): bigint {
    return this.mem.none.address + offset;
  }
  /** The first IOVA above the window the platform reserves (VT-d: the MSI region; mock: the aperture's end). */
  get windowTop(): bigint {
    return this.target.windowTop;
  }

  /** A user address as the step's input shows it: relative to the buffer it lies in (the same in both profiles). */
  #vaddrLabel(v: bigint): string {
    for (const [name, m] of [['rw', this.mem.rw], ['ro', this.mem.ro], ['none', this.mem.none]] as const) {
      const off = v - m.address;
      if (off >= 0n && off <= BigInt(m.length)) return `${name}+${hex(off)}`;
      if (off < 0n && off > -PAGE * 16n) return `${name}-${hex(-off)}`;
    }
    return hex(v);
  }

  // ---------------------------------------------------------------- native iommufd: the same requests as IOMMU_IOAS_* on the device's IOAS

  /**
   * MAP_DMA as IOMMU_IOAS_MAP at a fixed IOVA: READ and WRITE become IOMMU_IOAS_MAP_READABLE and
   * _WRITEABLE, undefined bits stay the same undefined bits; VADDR has no counterpart. argsz becomes
   * the struct's size at the same distance from the struct's end (32 bytes there, 40 here), and a
   * tail the same bytes after the struct.
   */
  #nativeMap(n: NativeIoas, a: { iova: bigint; size: bigint; vaddr: bigint; flags: number; argsz?: number; tail?: Uint8Array }): number {
    if (a.flags & U.VFIO_DMA_MAP_FLAG_VADDR) throw new NoNativeEquivalent(NATIVE_NO_VADDR_FLAG);
    const flags =
      U.IOMMU_IOAS_MAP_FIXED_IOVA |
      (a.flags & READ ? U.IOMMU_IOAS_MAP_READABLE : 0) |
      (a.flags & WRITE ? U.IOMMU_IOAS_MAP_WRITEABLE : 0) |
      (a.flags & ~(RW | U.VFIO_DMA_MAP_FLAG_VADDR));
    const size = a.argsz === undefined ? undefined : a.argsz + U.iommu_ioas_map.sizeof - U.vfio_iommu_type1_dma_map.sizeof;
    if (size !== undefined && size > 0xffff_ffff) throw new NoNativeEquivalent(`argsz ${hex(BigInt(a.argsz!))} is a size of ${hex(BigInt(size))} for IOMMU_IOAS_MAP, beyond its u32 size field`);
    const bytes = U.iommu_ioas_map.encode({ ...(size !== undefined ? { size } : {}), flags: flags >>> 0, ioas_id: n.ioasId, user_va: a.vaddr, length: a.size, iova: a.iova }, a.tail ? { tail: a.tail } : {});
    const errno = n.ioctl(U.IOMMU_IOAS_MAP, bytes);
    this.rec.record('IOMMU_IOAS_MAP', errno, {
      in: { iova: hex(a.iova), length: hex(a.size), user_va: this.#vaddrLabel(a.vaddr), flags: hex(flags >>> 0), ...(size !== undefined ? { size } : {}), ...(a.tail ? { tail: `${a.tail.length} bytes` } : {}) },
    });
    return errno;
  }

  /**
   * UNMAP_DMA as IOMMU_IOAS_UNMAP (the same 24-byte struct size: argsz is the size as given). FLAG_ALL
   * with IOVA and size 0 is IOAS_UNMAP's own unmap-all (IOVA 0, length U64_MAX); other flags have no
   * counterpart (IOAS_UNMAP has no flags). `size` out is the struct's length after the call.
   */
  #nativeUnmap(n: NativeIoas, a: { iova: bigint; size: bigint; flags?: number; argsz?: number; tail?: Uint8Array }): { errno: number; size: bigint } {
    const flags = a.flags ?? 0;
    let length = a.size;
    if (flags === U.VFIO_DMA_UNMAP_FLAG_ALL) {
      if (a.iova !== 0n || a.size !== 0n) throw new NoNativeEquivalent(NATIVE_NO_UNMAP_ALL_RANGE);
      length = U64_MAX;
    } else if (flags !== 0) {
      throw new NoNativeEquivalent(nativeNoUnmapFlag(flags));
    }
    const bytes = U.iommu_ioas_unmap.encode({ ...(a.argsz !== undefined ? { size: a.argsz } : {}), ioas_id: n.ioasId, iova: a.iova, length }, a.tail ? { tail: a.tail } : {});
    const errno = n.ioctl(U.IOMMU_IOAS_UNMAP, bytes);
    const out = U.iommu_ioas_unmap.decode(bytes).length;
    this.rec.record('IOMMU_IOAS_UNMAP', errno, {
      in: { iova: hex(a.iova), length: hex(length), ...(a.argsz !== undefined ? { size: a.argsz } : {}), ...(a.tail ? { tail: `${a.tail.length} bytes` } : {}) },
      // The same key as UNMAP_DMA's: what the struct's length holds after the call (the bytes unmapped on success).
      out: { size: outValue(out) },
    });
    return { errno, size: out };
  }

  /** GET_INFO's IOVA ranges as IOMMU_IOAS_IOVA_RANGES; nothing else of GET_INFO has a native counterpart. */
  #nativeIovaRanges(n: NativeIoas, argsz: number, fields: InfoField[]): { errno: number; argsz: number } {
    const other = fields.filter((f) => f !== 'iova_ranges');
    if (other.length > 0 || argsz !== 4096) {
      throw new NoNativeEquivalent(nativeOnlyIovaRanges(other.length > 0 ? other.join(', ') : `argsz ${argsz}`));
    }
    const r = n.ioasIovaRanges({ ioasId: n.ioasId, capacity: 64 });
    const ranges = r.errno === 0 ? r.ranges : null;
    this.rec.record('IOMMU_IOAS_IOVA_RANGES', r.errno, {
      in: { ioas_id: 'the IOAS', num_iovas: 64 },
      out: { iova_ranges: ranges ? ranges.map((x) => `[${hex(x.start)},${hex(x.last)}]`).join(' ') : null },
      normalised: { iova_ranges: ranges ? `covers [${hex(WINDOW.start)},${hex(WINDOW.last)}]: ${ranges.some((x) => x.start <= WINDOW.start && x.last >= WINDOW.last) ? 'yes' : 'no'}` : null },
    });
    return { errno: r.errno, argsz };
  }

  // ---------------------------------------------------------------- container ioctls

  map(a: { iova: bigint; size: bigint; vaddr?: bigint; flags?: number; argsz?: number; tail?: Uint8Array }): number {
    const flags = a.flags ?? RW;
    const vaddr = a.vaddr ?? this.rw();
    if (this.target.native) return this.#nativeMap(this.target.native, { ...a, flags, vaddr });
    const r = this.target.container.mapDma({ flags, vaddr, iova: a.iova, size: a.size, ...(a.argsz !== undefined ? { argsz: a.argsz } : {}), ...(a.tail ? { tail: a.tail } : {}) });
    this.rec.record('VFIO_IOMMU_MAP_DMA', r.errno, {
      in: { iova: hex(a.iova), size: hex(a.size), vaddr: this.#vaddrLabel(vaddr), flags: hex(flags), ...(a.argsz !== undefined ? { argsz: a.argsz } : {}), ...(a.tail ? { tail: `${a.tail.length} bytes` } : {}) },
    });
    return r.errno;
  }

  unmap(a: { iova: bigint; size: bigint; flags?: number; argsz?: number; tail?: Uint8Array }): { errno: number; size: bigint } {
    if (this.target.native) return this.#nativeUnmap(this.target.native, a);
    const r = this.target.container.unmapDma({ flags: a.flags ?? 0, iova: a.iova, size: a.size, ...(a.argsz !== undefined ? { argsz: a.argsz } : {}), ...(a.tail ? { tail: a.tail } : {}) });
    this.rec.record('VFIO_IOMMU_UNMAP_DMA', r.errno, {
      in: { iova: hex(a.iova), size: hex(a.size), flags: hex(a.flags ?? 0), ...(a.argsz !== undefined ? { argsz: a.argsz } : {}), ...(a.tail ? { tail: `${a.tail.length} bytes` } : {}) },
      // What the struct's size holds after the call: the bytes unmapped when the kernel wrote it back, else the input.
      out: { size: outValue(r.size) },
    });
    return { errno: r.errno, size: r.size };
  }

  unmapAll(): { errno: number; size: bigint } {
    return this.unmap({ iova: 0n, size: 0n, flags: U.VFIO_DMA_UNMAP_FLAG_ALL });
  }

  /** VFIO_IOMMU_GET_INFO with `argsz` (a 4 KiB buffer), recording the chosen fields. */
  info(argsz: number, fields: InfoField[]): { errno: number; argsz: number } {
    if (this.target.native) return this.#nativeIovaRanges(this.target.native, argsz, fields);
    const r = this.target.container.getInfo({ argsz, bufferSize: 4096 });
    const out: Record<string, OutValue> = {};
    const normalised: Record<string, OutValue> = {};
    const unknown: NonNullable<Step['unknown']> = {};
    const chain = r.caps;
    const cap = <K extends string>(kind: K) => chain.caps.find((c) => c.kind === kind);
    for (const f of fields) {
      switch (f) {
        case 'argsz':
          out.argsz = r.argsz;
          // Its size counts the platform's IOVA ranges; what does not depend on them is whether the kernel kept,
          // grew or shrank the caller's value.
          normalised.argsz = r.argsz === argsz ? 'kept' : r.argsz > argsz ? 'grown' : 'shrunk';
          break;
        case 'flags':
          out.flags = hex(r.flags);
          break;
        case 'iova_pgsizes':
          out.iova_pgsizes = hex(r.iovaPgsizes);
          // The page sizes are the IOMMU's; the smallest is what a VMM aligns to.
          normalised.iova_pgsizes = r.iovaPgsizes === 0n ? '0x0' : hex(r.iovaPgsizes & -r.iovaPgsizes);
          // A model's answer may leave bits unknown (Type1Platform.pgsizeBitsUnknown): said, and compared without them.
          if (r.iovaPgsizesUnknown) unknown.iova_pgsizes = { bits: hex(r.iovaPgsizesUnknown), reason: PGSIZE_BITS_UNKNOWN };
          break;
        case 'cap_offset':
          out.cap_offset = r.capOffset;
          break;
        case 'caps':
          out.caps = chain.ok ? chain.caps.map((c) => c.kind).join(',') || 'none' : `error: ${chain.message}`;
          break;
        case 'dma_avail': {
          const c = cap('dma_avail') as { avail: number } | undefined;
          out.dma_avail = c ? c.avail : null;
          break;
        }
        case 'iova_ranges': {
          const c = cap('iova_range') as { iova_ranges: { start: bigint; end: bigint }[] } | undefined;
          out.iova_ranges = c ? c.iova_ranges.map((x) => `[${hex(x.start)},${hex(x.end)}]`).join(' ') : null;
          // The ranges are the platform's (aperture, MSI window); whether the scenarios' window is usable is not.
          normalised.iova_ranges = c ? `covers [${hex(WINDOW.start)},${hex(WINDOW.last)}]: ${c.iova_ranges.some((x) => x.start <= WINDOW.start && x.end >= WINDOW.last) ? 'yes' : 'no'}` : null;
          break;
        }
        case 'migration': {
          const c = cap('migration') as { flags: number; pgsize_bitmap: bigint; max_dirty_bitmap_size: bigint } | undefined;
          out.migration = c ? `flags=${hex(c.flags)} pgsize_bitmap=${hex(c.pgsize_bitmap)} max_dirty_bitmap_size=${hex(c.max_dirty_bitmap_size)}` : null;
          break;
        }
        case 'caps_area':
          // The bytes after the 24-byte struct, up to argsz: what was written where the capabilities go.
          out.caps_area = Buffer.from(r.bytes.subarray(24, Math.max(24, Math.min(argsz, r.bytes.length)))).toString('hex');
          break;
      }
    }
    this.rec.record('VFIO_IOMMU_GET_INFO', r.errno, { in: { argsz }, out, normalised, unknown });
    return { errno: r.errno, argsz: r.argsz };
  }

  ext(extension: number): number {
    const r = this.target.container.checkExtension(extension);
    this.rec.record(`VFIO_CHECK_EXTENSION(${extensionName(extension)})`, r.errno, { out: { value: r.value } });
    return r.value;
  }

  setIommu(type: number): number {
    const r = this.target.container.setIommu(type);
    this.rec.record(`VFIO_SET_IOMMU(${extensionName(type)})`, r.errno);
    return r.errno;
  }

  dirtyPages(a: { flags: number; argsz?: number; tail?: Uint8Array }): number {
    const r = this.target.container.dirtyPages(a);
    this.rec.record('VFIO_IOMMU_DIRTY_PAGES', r.errno, { in: { flags: hex(a.flags), ...(a.argsz !== undefined ? { argsz: a.argsz } : {}) } });
    return r.errno;
  }

  apiVersion(): void {
    const r = this.target.container.getApiVersion();
    this.rec.record('VFIO_GET_API_VERSION', r.errno, { out: { version: r.version } });
  }

  /** A request by number with no argument (VFIO_IOMMU_ENABLE, unknown numbers). */
  ioctl(name: string, request: number): number {
    const r = this.target.container.ioctl(request, 0);
    this.rec.record(name, r.errno, { in: { request: hex(request) } });
    return r.errno;
  }

  // ---------------------------------------------------------------- group and device (roles: see targets.ts)

  #role(r: RoleResult): number {
    this.rec.record(r.op, r.errno);
    return r.errno;
  }
  attach(): number {
    return this.#role(this.target.attach());
  }
  openDevice(): number {
    return this.#role(this.target.openDevice());
  }
  closeDevice(): number {
    return this.#role(this.target.closeDevice());
  }
  unsetContainer(): number {
    return this.#role(this.target.unsetContainer());
  }
  /** native: attach()'s ioctls as two steps (where iommufd_device_bind's own checks are what a scenario audits). */
  nativeBind(): number {
    const errno = this.target.native!.bind();
    this.rec.record('VFIO_DEVICE_BIND_IOMMUFD', errno);
    return errno;
  }
  nativeIoasAlloc(): number {
    const errno = this.target.native!.allocIoas();
    this.rec.record('IOMMU_IOAS_ALLOC', errno);
    return errno;
  }
  groupStatus(): number {
    const r = this.target.groupStatus();
    this.rec.record('VFIO_GROUP_GET_STATUS', r.errno, { out: { flags: hex(r.flags) } });
    return r.flags;
  }

  // ---------------------------------------------------------------- the process

  /** VmLck and VmPin charged since the scenario began, in pages (read from /proc/self/status on the kernel). */
  charged(): void {
    const c = this.target.charged();
    this.rec.record('read VmLck/VmPin (pages charged since the scenario began)', 0, { out: { vmLck: outValue(c.vmLck), vmPin: outValue(c.vmPin) } });
  }
  /** Drops CAP_IPC_LOCK for the rest of the scenario (restored after it). */
  withoutIpcLock(): void {
    this.target.setIpcLock(false);
  }
  /** Sets RLIMIT_MEMLOCK for the rest of the scenario (restored after it). */
  memlockLimit(bytes: bigint): void {
    this.target.setMemlockLimit(bytes);
  }
}

/** Brings a fresh target to the scenario's setup; the setup's ioctls are not steps. Throws SetupError if one fails. */
export function applySetup(t: AuditTarget, setup: Setup): void {
  const need = (what: string, errno: number) => {
    if (errno !== 0) throw new SetupError(`setup '${setup}' on ${t.backend} (${t.side}): ${what} failed with errno ${errno}`, what, errno);
  };
  if (setup === 'raw') return;
  if (t.native) {
    // No SET_IOMMU: bound with an IOAS is 'attached' and 'type1v2-no-device' alike; the attach is the device open.
    if (setup === 'type1') throw new NoNativeEquivalent(NATIVE_NO_V1);
    const bound = t.attach();
    need(bound.op, bound.errno);
    if (setup === 'attached' || setup === 'type1v2-no-device') return;
    const dev = t.openDevice();
    need(dev.op, dev.errno);
    return;
  }
  const attached = t.attach();
  need(attached.op, attached.errno);
  if (setup === 'attached') return;
  need(`VFIO_SET_IOMMU`, t.container.setIommu(setup === 'type1' ? U.VFIO_TYPE1_IOMMU : U.VFIO_TYPE1v2_IOMMU).errno);
  if (setup === 'type1v2-no-device') return;
  const dev = t.openDevice();
  need(dev.op, dev.errno);
}

// ==================================================================== native iommufd: which scenarios have an equivalent

const NATIVE_NO_V1 = 'VFIO_TYPE1_IOMMU (v1) semantics: an IOAS has only v2\'s (no partial unmap of a mapping by its IOVA, no v1 page sizes)';

/** Areas with no native counterpart at all, and why. */
const NATIVE_NONE_BY_AREA: Record<string, string> = {
  V1_VS_V2: NATIVE_NO_V1,
  SET_IOMMU: 'iommufd has no SET_IOMMU: an IOAS takes mappings from IOMMU_IOAS_ALLOC on, with v2 semantics, before and after a device attaches',
  CHECK_EXTENSION: 'VFIO_CHECK_EXTENSION is a container ioctl; native iommufd has no extensions to ask for (IOMMU_GET_HW_INFO describes the device)',
  GROUP: 'the device cdev has no VFIO group: VFIO_DEVICE_BIND_IOMMUFD replaces SET_CONTAINER and GET_DEVICE_FD',
  DIRTY_PAGES: 'native dirty tracking is per HWPT (IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_SET_DIRTY_TRACKING, IOMMU_HWPT_GET_DIRTY_BITMAP), not a container-wide START/STOP',
  IOCTL: 'VFIO_GET_API_VERSION, VFIO_IOMMU_ENABLE and VFIO\'s ioctl numbers are container ioctls: /dev/iommu answers only its own',
  UPDATE_VADDR: 'IOMMU_IOAS_MAP and IOMMU_IOAS_UNMAP have no VADDR flag: updating the user address of a live mapping is type1\'s',
};

// The reasons of single steps, shared by the scenarios that declare them and by ScenarioContext, which throws
// NoNativeEquivalent with them when a native run reaches such a step (the declaration's dry run).
const NATIVE_NO_VADDR_FLAG = 'IOMMU_IOAS_MAP has no VADDR flag: updating the user address of a live mapping is type1\'s';
const NATIVE_NO_UNMAP_ALL_RANGE = 'IOMMU_IOAS_UNMAP unmaps everything with IOVA 0 and length U64_MAX: there is no unmap-all flag to combine with a range';
function nativeNoUnmapFlag(flag: number): string {
  return `IOMMU_IOAS_UNMAP has no flags: UNMAP_DMA flag ${hex(flag)} has no counterpart`;
}
/** `what`: the GET_INFO fields (or the argsz) a scenario reads. */
function nativeOnlyIovaRanges(what: string): string {
  return `VFIO_IOMMU_GET_INFO's ${what}: of GET_INFO, native iommufd has only the IOVA ranges (IOMMU_IOAS_IOVA_RANGES)`;
}

/**
 * Why a scenario has no native equivalent ('no native equivalent: ...'), or undefined when it has one: the
 * scenario's own notApplicable.native, else its area's, else v1's. Static: the guest makes no native test
 * of such a scenario, and the report's native cell gives this reason.
 */
export function nativeNotApplicable(s: Scenario): string | undefined {
  const why = s.notApplicable?.native ?? NATIVE_NONE_BY_AREA[s.area] ?? (s.setup === 'type1' ? NATIVE_NO_V1 : undefined);
  return why === undefined ? undefined : `no native equivalent: ${why}`;
}

/** Why a scenario does not apply on a backend (declared, never probed), or undefined when it runs there. */
export function notApplicableOn(s: Scenario, backend: BackendId): string | undefined {
  return backend === 'native' ? nativeNotApplicable(s) : s.notApplicable?.[backend];
}

// ==================================================================== the catalogue

const MOCK_2K = 'the mock domain maps 2 KiB IO pages (iova_alignment 2048); VT-d and type1 work in 4 KiB pages';
const MOCK_APERTURE = "the mock domain's aperture is [16 MiB, 2 GiB) with no MSI window; VT-d's starts at 0 and reserves 0xfee00000-0xfeefffff";

/** One 64 KiB mapping at A, read-write. */
const mapA = (c: ScenarioContext) => c.map({ iova: A, size: SZ });

/** The 24-byte vfio_bitmap after an UNMAP_DMA struct: pgsize, size (bytes), data (a user pointer). */
function unmapBitmapTail(pgsize: bigint, size: bigint, data: bigint): Uint8Array {
  return U.vfio_bitmap.encode({ pgsize, size, data });
}

const map: Scenario[] = [
  { id: 'map-dma.baseline', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA of 64 KiB, read-write, at an aligned IOVA (the control case)', body: mapA },
  { id: 'map-dma.argsz-short', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA with argsz one byte short of the 32-byte struct', body: (c) => c.map({ iova: A, size: SZ, argsz: 31 }) },
  { id: 'map-dma.argsz-exact', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA with argsz exactly the struct size (32)', body: (c) => c.map({ iova: A, size: SZ, argsz: 32 }) },
  { id: 'map-dma.argsz-long-zero-tail', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA with argsz 40: the struct followed by 8 zero bytes', body: (c) => c.map({ iova: A, size: SZ, argsz: 40, tail: new Uint8Array(8) }) },
  { id: 'map-dma.argsz-long-nonzero-tail', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA with argsz 40: the struct followed by 8 bytes of 0xff (iommufd-native ioctls would say E2BIG)', body: (c) => c.map({ iova: A, size: SZ, argsz: 40, tail: new Uint8Array(8).fill(0xff) }) },
  {
    id: 'map-dma.argsz-beyond-buffer', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA with argsz 0xffffffff on a 32-byte buffer (argsz has no upper bound)',
    notApplicable: { native: "iommufd's size is bounded by what it reads: copy_struct_from_user checks every byte past its struct up to the size, so a 4 GiB size reads the caller's memory beyond the buffer, another request" },
    body: (c) => c.map({ iova: A, size: SZ, argsz: 0xffff_ffff }),
  },
  { id: 'map-dma.flags-none', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA with flags 0 (neither READ nor WRITE)', body: (c) => c.map({ iova: A, size: SZ, flags: 0 }) },
  {
    id: 'map-dma.flags-none-then-device', area: 'MAP_DMA', setup: 'type1v2-no-device',
    title: 'MAP_DMA with flags 0 before the device is open, then the device opened (its domain must map that range)',
    body: (c) => (c.map({ iova: A, size: SZ, flags: 0 }), c.openDevice()),
  },
  { id: 'map-dma.flags-read-only', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA with READ only', body: (c) => c.map({ iova: A, size: SZ, flags: READ }) },
  { id: 'map-dma.flags-write-only', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA with WRITE only', body: (c) => c.map({ iova: A, size: SZ, flags: WRITE }) },
  { id: 'map-dma.flags-unknown-bit', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA with READ|WRITE and the undefined bit 3 (1 << 3)', body: (c) => c.map({ iova: A, size: SZ, flags: RW | (1 << 3) }) },
  { id: 'map-dma.flags-bit31', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA with READ|WRITE and bit 31', body: (c) => c.map({ iova: A, size: SZ, flags: (RW | (1 << 31)) >>> 0 }) },
  { id: 'map-dma.flags-vaddr-nothing-mapped', area: 'MAP_DMA', setup: 'type1v2', notApplicable: { native: NATIVE_NO_VADDR_FLAG }, title: 'MAP_DMA with VFIO_DMA_MAP_FLAG_VADDR alone where nothing is mapped', body: (c) => c.map({ iova: A, size: SZ, flags: U.VFIO_DMA_MAP_FLAG_VADDR }) },
  { id: 'map-dma.flags-vaddr-with-rw', area: 'MAP_DMA', setup: 'type1v2', notApplicable: { native: NATIVE_NO_VADDR_FLAG }, title: 'MAP_DMA with VADDR|READ|WRITE (VADDR excludes the protection bits)', body: (c) => c.map({ iova: A, size: SZ, flags: U.VFIO_DMA_MAP_FLAG_VADDR | RW }) },
  { id: 'map-dma.readonly-memory-rw', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA READ|WRITE of a PROT_READ mapping (the pin needs write access)', body: (c) => c.map({ iova: A, size: SZ, vaddr: c.ro() }) },
  { id: 'map-dma.readonly-memory-read', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA READ of a PROT_READ mapping', body: (c) => c.map({ iova: A, size: SZ, vaddr: c.ro(), flags: READ }) },
  { id: 'map-dma.no-access-memory', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA of a PROT_NONE mapping (nothing can be pinned)', body: (c) => c.map({ iova: A, size: SZ, vaddr: c.none() }) },
  { id: 'map-dma.iova-unaligned-2k', area: 'MAP_DMA', setup: 'type1v2', platformDependent: MOCK_2K, title: 'MAP_DMA with the IOVA 2 KiB past a 4 KiB boundary', body: (c) => c.map({ iova: A + 2048n, size: SZ }) },
  { id: 'map-dma.iova-unaligned-byte', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA with the IOVA one byte past a page boundary', body: (c) => c.map({ iova: A + 1n, size: SZ }) },
  { id: 'map-dma.size-unaligned-2k', area: 'MAP_DMA', setup: 'type1v2', platformDependent: MOCK_2K, title: 'MAP_DMA with a size of 64 KiB + 2 KiB', body: (c) => c.map({ iova: A, size: SZ + 2048n }) },
  { id: 'map-dma.size-unaligned-byte', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA with a size of 64 KiB + 1', body: (c) => c.map({ iova: A, size: SZ + 1n }) },
  { id: 'map-dma.vaddr-unaligned-2k', area: 'MAP_DMA', setup: 'type1v2', platformDependent: MOCK_2K, title: 'MAP_DMA with the user address 2 KiB into a page', body: (c) => c.map({ iova: A, size: SZ, vaddr: c.rw(2048n) }) },
  { id: 'map-dma.vaddr-unaligned-byte', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA with the user address one byte into a page', body: (c) => c.map({ iova: A, size: SZ, vaddr: c.rw(1n) }) },
  { id: 'map-dma.size-zero', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA of size 0', body: (c) => c.map({ iova: A, size: 0n }) },
  { id: 'map-dma.size-huge', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA of size 2^64 - 4 KiB', body: (c) => c.map({ iova: A, size: U64_MAX - PAGE + 1n }) },
  { id: 'map-dma.iova-wraps', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA whose IOVA + size wraps past 2^64', body: (c) => c.map({ iova: U64_MAX - PAGE + 1n, size: SZ }) },
  { id: 'map-dma.iova-ends-at-top', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA whose last byte is the last IOVA (2^64 - 1): no wrap, outside every aperture', body: (c) => c.map({ iova: U64_MAX - SZ + 1n, size: SZ }) },
  { id: 'map-dma.vaddr-wraps', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA whose user address + size wraps past 2^64', body: (c) => c.map({ iova: A, size: SZ, vaddr: U64_MAX - PAGE + 1n }) },
  { id: 'map-dma.vaddr-ends-at-top', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA whose user range ends exactly at 2^64 (a kernel address, unmappable)', body: (c) => c.map({ iova: A, size: SZ, vaddr: U64_MAX - SZ + 1n }) },
  { id: 'map-dma.iova-beyond-aperture', area: 'MAP_DMA', setup: 'type1v2', title: 'MAP_DMA at IOVA 2^60, beyond the IOMMU aperture', body: (c) => c.map({ iova: 1n << 60n, size: SZ }) },
  { id: 'map-dma.iova-msi-window', area: 'MAP_DMA', setup: 'type1v2', platformDependent: MOCK_APERTURE, title: 'MAP_DMA at 0xfee00000, the x86 MSI window (a reserved region on VT-d)', body: (c) => c.map({ iova: 0xfee0_0000n, size: SZ }) },
  { id: 'map-dma.iova-zero', area: 'MAP_DMA', setup: 'type1v2', platformDependent: MOCK_APERTURE, title: 'MAP_DMA at IOVA 0', body: (c) => c.map({ iova: 0n, size: SZ }) },
];

const overlap: Scenario[] = [
  { id: 'overlap.exact', area: 'OVERLAP', setup: 'type1v2', title: 'MAP_DMA of exactly the range of an existing mapping', body: (c) => (mapA(c), c.map({ iova: A, size: SZ, vaddr: c.rw(SZ) })) },
  { id: 'overlap.inside', area: 'OVERLAP', setup: 'type1v2', title: 'MAP_DMA of 16 KiB inside an existing 64 KiB mapping', body: (c) => (mapA(c), c.map({ iova: A + 16n * KiB, size: 16n * KiB, vaddr: c.rw(SZ) })) },
  { id: 'overlap.head', area: 'OVERLAP', setup: 'type1v2', title: "MAP_DMA overlapping an existing mapping's first 16 KiB from below", body: (c) => (mapA(c), c.map({ iova: A - 16n * KiB, size: 32n * KiB, vaddr: c.rw(SZ) })) },
  { id: 'overlap.tail', area: 'OVERLAP', setup: 'type1v2', title: "MAP_DMA overlapping an existing mapping's last 16 KiB from above", body: (c) => (mapA(c), c.map({ iova: A + 48n * KiB, size: 32n * KiB, vaddr: c.rw(SZ) })) },
  { id: 'overlap.spanning', area: 'OVERLAP', setup: 'type1v2', title: 'MAP_DMA spanning an existing mapping with room on both sides', body: (c) => (mapA(c), c.map({ iova: A - 16n * KiB, size: SZ + 32n * KiB, vaddr: c.rw(SZ) })) },
  {
    id: 'overlap.adjacent', area: 'OVERLAP', setup: 'type1v2', title: 'MAP_DMA right below and right above an existing mapping (touching, not overlapping)',
    body: (c) => {
      c.map({ iova: A + SZ, size: SZ });
      c.map({ iova: A, size: SZ, vaddr: c.rw(SZ) });
      c.map({ iova: A + 2n * SZ, size: SZ, vaddr: c.rw(2n * SZ) });
    },
  },
  {
    id: 'overlap.and-reserved', area: 'OVERLAP', setup: 'type1v2',
    title: 'MAP_DMA that overlaps an existing mapping AND runs into the reserved range above it: which check wins',
    body: (c) => {
      c.map({ iova: c.windowTop - SZ, size: SZ });
      c.map({ iova: c.windowTop - SZ, size: 2n * SZ, vaddr: c.rw(SZ) });
    },
  },
];

const unmap: Scenario[] = [
  { id: 'unmap-dma.argsz-short', area: 'UNMAP_DMA', setup: 'type1v2', title: 'UNMAP_DMA with argsz one byte short of the 24-byte struct', body: (c) => (mapA(c), c.unmap({ iova: A, size: SZ, argsz: 23 })) },
  { id: 'unmap-dma.argsz-long-nonzero-tail', area: 'UNMAP_DMA', setup: 'type1v2', title: 'UNMAP_DMA with argsz 32: the struct followed by 8 bytes of 0xff', body: (c) => (mapA(c), c.unmap({ iova: A, size: SZ, argsz: 32, tail: new Uint8Array(8).fill(0xff) })) },
  { id: 'unmap-dma.exact', area: 'UNMAP_DMA', setup: 'type1v2', title: 'UNMAP_DMA of exactly one mapping: size written back', body: (c) => (mapA(c), c.unmap({ iova: A, size: SZ })) },
  { id: 'unmap-dma.nothing-mapped', area: 'UNMAP_DMA', setup: 'type1v2', title: 'UNMAP_DMA of an aligned range where nothing is mapped', body: (c) => c.unmap({ iova: A, size: SZ }) },
  { id: 'unmap-dma.nothing-mapped-unaligned', area: 'UNMAP_DMA', setup: 'type1v2', title: 'UNMAP_DMA of 4 KiB at an IOVA one byte past a page boundary, nothing mapped', body: (c) => c.unmap({ iova: A + 1n, size: PAGE }) },
  { id: 'unmap-dma.size-unaligned', area: 'UNMAP_DMA', setup: 'type1v2', title: 'UNMAP_DMA of a mapping with size 64 KiB - 1', body: (c) => (mapA(c), c.unmap({ iova: A, size: SZ - 1n })) },
  { id: 'unmap-dma.size-zero', area: 'UNMAP_DMA', setup: 'type1v2', title: 'UNMAP_DMA of size 0 at a mapped IOVA (no ALL flag)', body: (c) => (mapA(c), c.unmap({ iova: A, size: 0n })) },
  { id: 'unmap-dma.iova-wraps', area: 'UNMAP_DMA', setup: 'type1v2', title: 'UNMAP_DMA whose IOVA + size wraps past 2^64', body: (c) => c.unmap({ iova: U64_MAX - PAGE + 1n, size: 2n * PAGE }) },
  { id: 'unmap-dma.ends-at-top', area: 'UNMAP_DMA', setup: 'type1v2', title: 'UNMAP_DMA of the last 64 KiB of the IOVA space (ends exactly at 2^64), nothing there', body: (c) => c.unmap({ iova: U64_MAX - SZ + 1n, size: SZ }) },
  { id: 'unmap-dma.bisect-middle', area: 'UNMAP_DMA', setup: 'type1v2', title: 'v2: UNMAP_DMA of 16 KiB in the middle of a 64 KiB mapping', body: (c) => (mapA(c), c.unmap({ iova: A + 16n * KiB, size: 16n * KiB })) },
  { id: 'unmap-dma.bisect-head', area: 'UNMAP_DMA', setup: 'type1v2', title: 'v2: UNMAP_DMA of the first 16 KiB of a 64 KiB mapping', body: (c) => (mapA(c), c.unmap({ iova: A, size: 16n * KiB })) },
  {
    id: 'unmap-dma.cover-then-bisect', area: 'UNMAP_DMA', setup: 'type1v2',
    title: 'v2: UNMAP_DMA covering mapping 1 whole and half of mapping 2, then what is left (UNMAP ALL)',
    body: (c) => {
      mapA(c);
      c.map({ iova: A + SZ, size: SZ, vaddr: c.rw(SZ) });
      c.unmap({ iova: A, size: SZ + SZ / 2n });
      c.unmapAll();
    },
  },
  {
    id: 'unmap-dma.superset-with-holes', area: 'UNMAP_DMA', setup: 'type1v2', title: 'UNMAP_DMA of a range covering two whole mappings and the holes around them',
    body: (c) => {
      c.map({ iova: A + SZ, size: SZ });
      c.map({ iova: A + 3n * SZ, size: SZ, vaddr: c.rw(SZ) });
      c.unmap({ iova: A, size: 5n * SZ });
    },
  },
  {
    id: 'unmap-dma.all', area: 'UNMAP_DMA', setup: 'type1v2', title: 'UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_ALL over two mappings',
    body: (c) => {
      mapA(c);
      c.map({ iova: A + 2n * SZ, size: SZ, vaddr: c.rw(SZ) });
      c.unmapAll();
    },
  },
  { id: 'unmap-dma.all-empty', area: 'UNMAP_DMA', setup: 'type1v2', title: 'UNMAP_DMA with FLAG_ALL when nothing is mapped', body: (c) => c.unmapAll() },
  { id: 'unmap-dma.all-with-iova', area: 'UNMAP_DMA', setup: 'type1v2', notApplicable: { native: NATIVE_NO_UNMAP_ALL_RANGE }, title: 'UNMAP_DMA with FLAG_ALL and a non-zero IOVA (both must be 0)', body: (c) => (mapA(c), c.unmap({ iova: A, size: 0n, flags: U.VFIO_DMA_UNMAP_FLAG_ALL })) },
  { id: 'unmap-dma.all-with-size', area: 'UNMAP_DMA', setup: 'type1v2', notApplicable: { native: NATIVE_NO_UNMAP_ALL_RANGE }, title: 'UNMAP_DMA with FLAG_ALL and a non-zero size', body: (c) => (mapA(c), c.unmap({ iova: 0n, size: SZ, flags: U.VFIO_DMA_UNMAP_FLAG_ALL })) },
  { id: 'unmap-dma.flags-unknown-bit', area: 'UNMAP_DMA', setup: 'type1v2', notApplicable: { native: nativeNoUnmapFlag(1 << 3) }, title: 'UNMAP_DMA with the undefined flag bit 3', body: (c) => (mapA(c), c.unmap({ iova: A, size: SZ, flags: 1 << 3 })) },
  {
    id: 'unmap-dma.dirty-bitmap-untracked', area: 'UNMAP_DMA', setup: 'type1v2', notApplicable: { native: nativeNoUnmapFlag(U.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) }, title: 'UNMAP_DMA with GET_DIRTY_BITMAP and a valid bitmap while dirty tracking is off',
    body: (c) => (mapA(c), c.unmap({ iova: A, size: SZ, flags: U.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, tail: unmapBitmapTail(PAGE, 8n, c.rw(512n * KiB)) })),
  },
  {
    id: 'unmap-dma.dirty-bitmap-tracked', area: 'UNMAP_DMA', setup: 'type1v2', notApplicable: { native: NATIVE_NO_CONTAINER }, title: 'DIRTY_PAGES START, MAP_DMA, then UNMAP_DMA with GET_DIRTY_BITMAP (the migration path of type1)',
    body: (c) => {
      c.dirtyPages({ flags: U.VFIO_IOMMU_DIRTY_PAGES_FLAG_START });
      mapA(c);
      c.unmap({ iova: A, size: SZ, flags: U.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, tail: unmapBitmapTail(PAGE, 8n, c.rw(512n * KiB)) });
    },
  },
];

const v1: Scenario[] = [
  { id: 'v1.unmap-inside', area: 'V1_VS_V2', setup: 'type1', title: 'v1 (TYPE1): UNMAP_DMA of 16 KiB in the middle of a 64 KiB mapping', body: (c) => (mapA(c), c.unmap({ iova: A + 16n * KiB, size: 16n * KiB })) },
  { id: 'v1.unmap-first-half', area: 'V1_VS_V2', setup: 'type1', title: 'v1: UNMAP_DMA of the first half of a mapping', body: (c) => (mapA(c), c.unmap({ iova: A, size: SZ / 2n })) },
  {
    id: 'v1.unmap-one-and-a-half', area: 'V1_VS_V2', setup: 'type1', title: 'v1: UNMAP_DMA covering mapping 1 and the first half of mapping 2',
    body: (c) => {
      mapA(c);
      c.map({ iova: A + SZ, size: SZ, vaddr: c.rw(SZ) });
      c.unmap({ iova: A, size: SZ + SZ / 2n });
    },
  },
  {
    id: 'v1.unmap-first-half-leftover', area: 'V1_VS_V2', setup: 'type1', title: 'v1: after UNMAP_DMA of the first half of a mapping, what is left (UNMAP ALL)',
    body: (c) => {
      mapA(c);
      c.unmap({ iova: A, size: SZ / 2n });
      c.unmapAll();
    },
  },
  { id: 'v1.map-iova-unaligned-2k', area: 'V1_VS_V2', setup: 'type1', title: 'v1: MAP_DMA with the IOVA 2 KiB past a 4 KiB boundary', body: (c) => c.map({ iova: A + 2048n, size: SZ }) },
  { id: 'v1.get-info-pgsizes', area: 'V1_VS_V2', setup: 'type1', title: 'v1: GET_INFO iova_pgsizes', body: (c) => c.info(4096, ['flags', 'iova_pgsizes']) },
  { id: 'v1.dirty-pages-start', area: 'V1_VS_V2', setup: 'type1', title: 'v1: VFIO_IOMMU_DIRTY_PAGES START', body: (c) => c.dirtyPages({ flags: U.VFIO_IOMMU_DIRTY_PAGES_FLAG_START }) },
];

const setIommu: Scenario[] = [
  { id: 'set-iommu.without-group', area: 'SET_IOMMU', setup: 'raw', title: 'SET_IOMMU(TYPE1v2) on a container with no group (compat-mock: no compat IOAS)', body: (c) => c.setIommu(U.VFIO_TYPE1v2_IOMMU) },
  { id: 'set-iommu.twice', area: 'SET_IOMMU', setup: 'attached', title: 'SET_IOMMU(TYPE1v2) twice', body: (c) => (c.setIommu(U.VFIO_TYPE1v2_IOMMU), c.setIommu(U.VFIO_TYPE1v2_IOMMU)) },
  { id: 'set-iommu.v2-then-v1', area: 'SET_IOMMU', setup: 'attached', title: 'SET_IOMMU(TYPE1v2), then SET_IOMMU(TYPE1)', body: (c) => (c.setIommu(U.VFIO_TYPE1v2_IOMMU), c.setIommu(U.VFIO_TYPE1_IOMMU)) },
  { id: 'set-iommu.v1-then-v2', area: 'SET_IOMMU', setup: 'attached', title: 'SET_IOMMU(TYPE1), then SET_IOMMU(TYPE1v2)', body: (c) => (c.setIommu(U.VFIO_TYPE1_IOMMU), c.setIommu(U.VFIO_TYPE1v2_IOMMU)) },
  { id: 'set-iommu.v1-with-mappings', area: 'SET_IOMMU', setup: 'type1v2', title: 'SET_IOMMU(TYPE1) on a v2 container with the device open and a mapping', body: (c) => (mapA(c), c.setIommu(U.VFIO_TYPE1_IOMMU)) },
  { id: 'set-iommu.v1-after-v2-no-mappings', area: 'SET_IOMMU', setup: 'type1v2', title: 'SET_IOMMU(TYPE1) on a v2 container with the device open and nothing mapped', body: (c) => c.setIommu(U.VFIO_TYPE1_IOMMU) },
  { id: 'set-iommu.type-unknown', area: 'SET_IOMMU', setup: 'attached', title: 'SET_IOMMU with an undefined type (99)', body: (c) => c.setIommu(99) },
  { id: 'set-iommu.type-spapr', area: 'SET_IOMMU', setup: 'attached', title: 'SET_IOMMU(VFIO_SPAPR_TCE_IOMMU) on x86', body: (c) => c.setIommu(U.VFIO_SPAPR_TCE_IOMMU) },
  { id: 'set-iommu.type-nesting', area: 'SET_IOMMU', setup: 'attached', title: 'SET_IOMMU(VFIO_TYPE1_NESTING_IOMMU)', body: (c) => c.setIommu(U.VFIO_TYPE1_NESTING_IOMMU) },
  { id: 'set-iommu.type-noiommu', area: 'SET_IOMMU', setup: 'attached', title: 'SET_IOMMU(VFIO_NOIOMMU_IOMMU) (CONFIG_VFIO_NOIOMMU off)', body: (c) => c.setIommu(U.VFIO_NOIOMMU_IOMMU) },
  { id: 'set-iommu.type-unmap-all', area: 'SET_IOMMU', setup: 'attached', title: 'SET_IOMMU(VFIO_UNMAP_ALL): an extension id, not an IOMMU type', body: (c) => c.setIommu(U.VFIO_UNMAP_ALL) },
  {
    id: 'set-iommu.after-unset', area: 'SET_IOMMU', setup: 'attached', notApplicable: { 'compat-mock': NO_GROUP_ON_MOCK },
    title: 'SET_IOMMU(TYPE1v2), UNSET_CONTAINER of the only group, SET_IOMMU(TYPE1v2) again',
    body: (c) => (c.setIommu(U.VFIO_TYPE1v2_IOMMU), c.unsetContainer(), c.setIommu(U.VFIO_TYPE1v2_IOMMU)),
  },
  { id: 'set-iommu.map-before', area: 'SET_IOMMU', setup: 'attached', nativeStepsOnly: 'IOMMU_IOAS_MAP before VFIO_DEVICE_ATTACH_IOMMUFD_PT: an order of native calls, where the scenario audits an order against SET_IOMMU', title: 'MAP_DMA after the group is attached but before SET_IOMMU', body: mapA },
  { id: 'set-iommu.unmap-before', area: 'SET_IOMMU', setup: 'attached', nativeStepsOnly: 'IOMMU_IOAS_UNMAP before VFIO_DEVICE_ATTACH_IOMMUFD_PT: an order of native calls, where the scenario audits an order against SET_IOMMU', title: 'UNMAP_DMA before SET_IOMMU', body: (c) => c.unmap({ iova: A, size: SZ }) },
  { id: 'set-iommu.get-info-before', area: 'SET_IOMMU', setup: 'attached', title: 'GET_INFO before SET_IOMMU', body: (c) => c.info(4096, ['flags']) },
  { id: 'set-iommu.dirty-pages-before', area: 'SET_IOMMU', setup: 'attached', title: 'DIRTY_PAGES START before SET_IOMMU', body: (c) => c.dirtyPages({ flags: U.VFIO_IOMMU_DIRTY_PAGES_FLAG_START }) },
];

const EXTENSIONS: [number, string][] = [
  [0, '0-none'], [1, '1-type1'], [2, '2-spapr-tce'], [3, '3-type1v2'], [4, '4-dma-cc-iommu'], [5, '5-eeh'], [6, '6-type1-nesting'],
  [7, '7-spapr-tce-v2'], [8, '8-noiommu'], [9, '9-unmap-all'], [10, '10-update-vaddr'], [11, '11-undefined'], [1000, '1000-undefined'],
];

const checkExtension: Scenario[] = EXTENSIONS.map(([ext, slug]) => ({
  id: `check-extension.${slug}`,
  area: 'CHECK_EXTENSION',
  setup: 'raw' as const,
  title: `CHECK_EXTENSION(${extensionName(ext)}) on a fresh container, then after attach, SET_IOMMU(TYPE1v2) and the device open`,
  ...(ext === U.VFIO_DMA_CC_IOMMU
    ? { platformDependent: "whether the IOMMU enforces cache coherency (VT-d: ECAP.SC; the mock domain: never) is the platform's" }
    : {}),
  body: (c: ScenarioContext) => {
    c.ext(ext);
    c.attach();
    c.setIommu(U.VFIO_TYPE1v2_IOMMU);
    c.openDevice();
    c.ext(ext);
  },
}));

const getInfo: Scenario[] = [
  { id: 'get-info.argsz-short', area: 'GET_INFO', setup: 'type1v2', notApplicable: { native: nativeOnlyIovaRanges('argsz, flags') }, title: 'GET_INFO with argsz 15, below the 16 bytes up to iova_pgsizes', body: (c) => c.info(15, ['argsz', 'flags']) },
  { id: 'get-info.argsz-16', area: 'GET_INFO', setup: 'type1v2', notApplicable: { native: nativeOnlyIovaRanges('argsz, flags, iova_pgsizes') }, title: 'GET_INFO with argsz 16 (no room for cap_offset): the argsz needed comes back', body: (c) => c.info(16, ['argsz', 'flags', 'iova_pgsizes']) },
  { id: 'get-info.argsz-struct', area: 'GET_INFO', setup: 'type1v2', notApplicable: { native: nativeOnlyIovaRanges('argsz, flags, cap_offset, caps') }, title: 'GET_INFO with argsz 24 (the struct, no room for capabilities)', body: (c) => c.info(24, ['argsz', 'flags', 'cap_offset', 'caps']) },
  {
    id: 'get-info.argsz-partial-caps', area: 'GET_INFO', setup: 'type1v2', notApplicable: { native: nativeOnlyIovaRanges('argsz, cap_offset, caps_area') }, title: 'GET_INFO with argsz 48: room for part of the capability chain; what is written after the struct',
    body: (c) => c.info(48, ['argsz', 'cap_offset', 'caps_area']),
  },
  {
    id: 'get-info.argsz-as-asked', area: 'GET_INFO', setup: 'type1v2', notApplicable: { native: nativeOnlyIovaRanges('argsz') }, title: 'GET_INFO with argsz 24, then again with the argsz it asked for: the capability chain',
    body: (c) => {
      const first = c.info(24, ['argsz']);
      c.info(first.argsz, ['argsz', 'cap_offset', 'caps']);
    },
  },
  { id: 'get-info.argsz-large', area: 'GET_INFO', setup: 'type1v2', notApplicable: { native: nativeOnlyIovaRanges('argsz, cap_offset') }, title: 'GET_INFO with argsz 4096, more than needed: is argsz kept or set to the size used', body: (c) => c.info(4096, ['argsz', 'cap_offset']) },
  { id: 'get-info.flags', area: 'GET_INFO', setup: 'type1v2', notApplicable: { native: nativeOnlyIovaRanges('flags') }, title: 'GET_INFO flags', body: (c) => c.info(4096, ['flags']) },
  { id: 'get-info.iova-pgsizes', area: 'GET_INFO', setup: 'type1v2', notApplicable: { native: nativeOnlyIovaRanges('iova_pgsizes') }, title: 'GET_INFO iova_pgsizes (the page sizes a VMM may map with)', body: (c) => c.info(4096, ['iova_pgsizes']) },
  { id: 'get-info.cap-chain', area: 'GET_INFO', setup: 'type1v2', notApplicable: { native: nativeOnlyIovaRanges('caps') }, title: 'GET_INFO capability chain: which capabilities, in which order', body: (c) => c.info(4096, ['caps']) },
  { id: 'get-info.cap-iova-range', area: 'GET_INFO', setup: 'type1v2', title: 'GET_INFO IOVA_RANGE capability: the usable IOVA ranges', body: (c) => c.info(4096, ['iova_ranges']) },
  { id: 'get-info.cap-dma-avail', area: 'GET_INFO', setup: 'type1v2', notApplicable: { native: nativeOnlyIovaRanges('dma_avail') }, title: 'GET_INFO DMA_AVAIL capability after one MAP_DMA: how many more mappings may be made', body: (c) => (mapA(c), c.info(4096, ['dma_avail'])) },
  { id: 'get-info.cap-migration', area: 'GET_INFO', setup: 'type1v2', notApplicable: { native: nativeOnlyIovaRanges('migration') }, title: 'GET_INFO MIGRATION capability (dirty-page tracking page sizes and bitmap limit)', body: (c) => c.info(4096, ['migration']) },
  { id: 'get-info.no-device', area: 'GET_INFO', setup: 'type1v2-no-device', notApplicable: { native: nativeOnlyIovaRanges('iova_pgsizes') }, platformDependent: MOCK_2K, title: 'GET_INFO iova_pgsizes and ranges after SET_IOMMU but before the device is open', body: (c) => c.info(4096, ['iova_pgsizes', 'iova_ranges']) },
];

const dirty: Scenario[] = [
  { id: 'dirty-pages.start', area: 'DIRTY_PAGES', setup: 'type1v2', title: 'VFIO_IOMMU_DIRTY_PAGES START', body: (c) => c.dirtyPages({ flags: U.VFIO_IOMMU_DIRTY_PAGES_FLAG_START }) },
  { id: 'dirty-pages.stop-untracked', area: 'DIRTY_PAGES', setup: 'type1v2', title: 'VFIO_IOMMU_DIRTY_PAGES STOP without a START', body: (c) => c.dirtyPages({ flags: U.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP }) },
  { id: 'dirty-pages.flags-none', area: 'DIRTY_PAGES', setup: 'type1v2', title: 'VFIO_IOMMU_DIRTY_PAGES with no flag', body: (c) => c.dirtyPages({ flags: 0 }) },
  { id: 'dirty-pages.two-flags', area: 'DIRTY_PAGES', setup: 'type1v2', title: 'VFIO_IOMMU_DIRTY_PAGES with START|STOP', body: (c) => c.dirtyPages({ flags: U.VFIO_IOMMU_DIRTY_PAGES_FLAG_START | U.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP }) },
];

const VFIO_UNDEFINED_IOCTL = 0x3b00 | (U.VFIO_BASE + 27); // _IO(';', 127): no VFIO ioctl has this number, and it is below iommufd's 0x80

const ioctls: Scenario[] = [
  { id: 'ioctl.get-api-version', area: 'IOCTL', setup: 'raw', title: 'VFIO_GET_API_VERSION', body: (c) => c.apiVersion() },
  { id: 'ioctl.iommu-enable-before-set', area: 'IOCTL', setup: 'raw', title: 'VFIO_IOMMU_ENABLE (a SPAPR ioctl) before SET_IOMMU', body: (c) => c.ioctl('VFIO_IOMMU_ENABLE', U.VFIO_IOMMU_ENABLE) },
  { id: 'ioctl.iommu-enable', area: 'IOCTL', setup: 'type1v2', title: 'VFIO_IOMMU_ENABLE (a SPAPR ioctl) on a type1 container', body: (c) => c.ioctl('VFIO_IOMMU_ENABLE', U.VFIO_IOMMU_ENABLE) },
  { id: 'ioctl.undefined-number', area: 'IOCTL', setup: 'type1v2', title: "An undefined ioctl number in VFIO's range (_IO(';', 127))", body: (c) => c.ioctl("_IO(';', 127)", VFIO_UNDEFINED_IOCTL) },
  { id: 'ioctl.undefined-number-before-set', area: 'IOCTL', setup: 'raw', title: "An undefined ioctl number in VFIO's range before SET_IOMMU", body: (c) => c.ioctl("_IO(';', 127)", VFIO_UNDEFINED_IOCTL) },
];

const groupNa = { 'compat-mock': NO_GROUP_ON_MOCK };
const group: Scenario[] = [
  { id: 'group.status-fresh', area: 'GROUP', setup: 'raw', notApplicable: groupNa, title: 'VFIO_GROUP_GET_STATUS of a group not attached to anything', body: (c) => c.groupStatus() },
  { id: 'group.status-attached', area: 'GROUP', setup: 'attached', notApplicable: groupNa, title: 'VFIO_GROUP_GET_STATUS after SET_CONTAINER', body: (c) => c.groupStatus() },
  { id: 'group.set-container-twice', area: 'GROUP', setup: 'attached', nativeStepsOnly: 'VFIO_DEVICE_BIND_IOMMUFD and IOMMU_IOAS_ALLOC a second time: a second bind of the device fd, where the scenario audits a group joining its container again', notApplicable: groupNa, title: 'VFIO_GROUP_SET_CONTAINER a second time, to the same container', body: (c) => c.attach() },
  { id: 'group.unset-not-set', area: 'GROUP', setup: 'raw', notApplicable: groupNa, title: 'VFIO_GROUP_UNSET_CONTAINER of a group that is not attached', body: (c) => c.unsetContainer() },
  { id: 'group.unset-with-device-open', area: 'GROUP', setup: 'type1v2', notApplicable: groupNa, title: 'VFIO_GROUP_UNSET_CONTAINER while a device fd of the group is open', body: (c) => c.unsetContainer() },
  { id: 'group.device-before-set-iommu', area: 'GROUP', setup: 'attached', nativeStepsOnly: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT after the bind: every native scenario\'s own setup, where the scenario audits GET_DEVICE_FD before SET_IOMMU', notApplicable: groupNa, title: 'VFIO_GROUP_GET_DEVICE_FD after SET_CONTAINER but before SET_IOMMU', body: (c) => c.openDevice() },
  { id: 'group.device-without-container', area: 'GROUP', setup: 'raw', nativeStepsOnly: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT before the bind: the device fd\'s own state, where the scenario audits a group with no container', notApplicable: groupNa, title: 'VFIO_GROUP_GET_DEVICE_FD of a group not attached to a container', body: (c) => c.openDevice() },
  {
    id: 'group.unset-then-reattach-mappings', area: 'GROUP', setup: 'type1v2-no-device', notApplicable: groupNa,
    title: 'MAP_DMA, UNSET_CONTAINER of the only group, SET_CONTAINER + SET_IOMMU again: are the mappings still there (UNMAP ALL)',
    body: (c) => {
      mapA(c);
      c.unsetContainer();
      c.attach();
      c.setIommu(U.VFIO_TYPE1v2_IOMMU);
      c.unmapAll();
    },
  },
];

const accounting: Scenario[] = [
  { id: 'accounting.map', area: 'ACCOUNTING', setup: 'type1v2', title: 'MAP_DMA of 64 KiB (16 pages) with CAP_IPC_LOCK: what VmLck and VmPin show', body: (c) => (mapA(c), c.charged()) },
  { id: 'accounting.map-without-ipc-lock', area: 'ACCOUNTING', setup: 'type1v2', title: 'MAP_DMA of 16 pages without CAP_IPC_LOCK: VmLck and VmPin', body: (c) => (c.withoutIpcLock(), mapA(c), c.charged()) },
  { id: 'accounting.unmap', area: 'ACCOUNTING', setup: 'type1v2', title: 'MAP_DMA then UNMAP_DMA without CAP_IPC_LOCK: everything uncharged', body: (c) => (c.withoutIpcLock(), mapA(c), c.unmap({ iova: A, size: SZ }), c.charged()) },
  {
    id: 'accounting.rlimit-exceeded', area: 'ACCOUNTING', setup: 'type1v2', title: 'Without CAP_IPC_LOCK, RLIMIT_MEMLOCK 32 KiB: MAP_DMA of 64 KiB fails and charges nothing',
    body: (c) => (c.withoutIpcLock(), c.memlockLimit(32n * KiB), mapA(c), c.charged()),
  },
  {
    id: 'accounting.rlimit-exact', area: 'ACCOUNTING', setup: 'type1v2', title: 'Without CAP_IPC_LOCK, RLIMIT_MEMLOCK 64 KiB: MAP_DMA of exactly 64 KiB',
    body: (c) => (c.withoutIpcLock(), c.memlockLimit(SZ), mapA(c), c.charged()),
  },
  {
    id: 'accounting.rlimit-with-ipc-lock', area: 'ACCOUNTING', setup: 'type1v2', title: 'With CAP_IPC_LOCK, RLIMIT_MEMLOCK 32 KiB: MAP_DMA of 64 KiB',
    body: (c) => (c.memlockLimit(32n * KiB), mapA(c), c.charged()),
  },
  {
    id: 'accounting.same-memory-twice', area: 'ACCOUNTING', setup: 'type1v2', title: 'The same 64 KiB of memory mapped at two IOVAs, without CAP_IPC_LOCK: charged once or twice',
    body: (c) => (c.withoutIpcLock(), mapA(c), c.map({ iova: A + SZ, size: SZ }), c.charged()),
  },
  {
    id: 'accounting.map-before-device-open', area: 'ACCOUNTING', setup: 'type1v2-no-device', title: 'MAP_DMA before the device is opened, then the device opened: when are pages pinned',
    body: (c) => (c.withoutIpcLock(), mapA(c), c.charged(), c.openDevice(), c.charged()),
  },
  {
    id: 'accounting.v1-partial-unmap', area: 'ACCOUNTING', setup: 'type1', title: 'v1: MAP_DMA of 16 pages, UNMAP_DMA of the first 8, without CAP_IPC_LOCK: what stays charged',
    body: (c) => (c.withoutIpcLock(), mapA(c), c.unmap({ iova: A, size: SZ / 2n }), c.charged()),
  },
];

const dmaEntryLimit: Scenario[] = [
  {
    id: 'dma-entry-limit.exhausted', area: 'DMA_ENTRY_LIMIT', setup: 'type1v2', env: { dmaEntryLimit: 2 },
    title: 'vfio_iommu_type1.dma_entry_limit=2: a third MAP_DMA',
    body: (c) => {
      c.map({ iova: A, size: PAGE });
      c.map({ iova: A + SZ, size: PAGE, vaddr: c.rw(SZ) });
      c.map({ iova: A + 2n * SZ, size: PAGE, vaddr: c.rw(2n * SZ) });
    },
  },
  {
    id: 'dma-entry-limit.dma-avail', area: 'DMA_ENTRY_LIMIT', setup: 'type1v2', notApplicable: { native: nativeOnlyIovaRanges('dma_avail') }, env: { dmaEntryLimit: 2 },
    title: 'vfio_iommu_type1.dma_entry_limit=2, one mapping made: the DMA_AVAIL capability',
    body: (c) => (c.map({ iova: A, size: PAGE }), c.info(4096, ['dma_avail'])),
  },
  {
    id: 'dma-entry-limit.unmap-gives-back', area: 'DMA_ENTRY_LIMIT', setup: 'type1v2', env: { dmaEntryLimit: 1 },
    title: 'vfio_iommu_type1.dma_entry_limit=1: MAP_DMA, UNMAP_DMA, MAP_DMA again',
    body: (c) => (c.map({ iova: A, size: PAGE }), c.unmap({ iova: A, size: PAGE }), c.map({ iova: A + SZ, size: PAGE })),
  },
];

const platform: Scenario[] = [
  {
    id: 'platform.msi-isolation', area: 'PLATFORM', setup: 'raw',
    notApplicable: { 'compat-mock': 'the mock device is exempt from the MSI isolation check (iommufd_device_bind skips selftest devices)' },
    // Runs on every platform: whether each step succeeds is the platform's (interrupt remapping, allow_unsafe_interrupts).
    title: "Taking the device under the platform's MSI isolation (interrupt remapping, else allow_unsafe_interrupts): SET_CONTAINER, SET_IOMMU (type1 checks MSI isolation at group attach) and GET_DEVICE_FD (iommufd checks it at bind)",
    body: (c) => (c.attach(), c.setIommu(U.VFIO_TYPE1v2_IOMMU), c.openDevice()),
    // native: BIND_IOMMUFD (where iommufd_device_bind checks MSI isolation), IOAS_ALLOC and ATTACH_IOMMUFD_PT,
    // step for step beside compat's SET_CONTAINER, SET_IOMMU and GET_DEVICE_FD.
    nativeBody: (c) => (c.nativeBind(), c.nativeIoasAlloc(), c.openDevice()),
  },
];

const vaddr: Scenario[] = [
  {
    id: 'vaddr.invalidate', area: 'UPDATE_VADDR', setup: 'type1v2', title: 'UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_VADDR (invalidate the user address, keep the mapping)',
    body: (c) => (mapA(c), c.unmap({ iova: A, size: SZ, flags: U.VFIO_DMA_UNMAP_FLAG_VADDR })),
  },
  {
    id: 'vaddr.invalidate-and-update', area: 'UPDATE_VADDR', setup: 'type1v2', title: 'UNMAP_DMA(VADDR) then MAP_DMA(VADDR) with a new user address (live update of a VMM)',
    body: (c) => (mapA(c), c.unmap({ iova: A, size: SZ, flags: U.VFIO_DMA_UNMAP_FLAG_VADDR }), c.map({ iova: A, size: SZ, vaddr: c.rw(SZ), flags: U.VFIO_DMA_MAP_FLAG_VADDR })),
  },
  {
    id: 'vaddr.update-without-invalidate', area: 'UPDATE_VADDR', setup: 'type1v2', title: 'MAP_DMA(VADDR) of a mapping whose user address was not invalidated',
    body: (c) => (mapA(c), c.map({ iova: A, size: SZ, vaddr: c.rw(SZ), flags: U.VFIO_DMA_MAP_FLAG_VADDR })),
  },
];

/** Every scenario, in catalogue order. */
export const CATALOGUE: readonly Scenario[] = [
  ...map, ...overlap, ...unmap, ...v1, ...setIommu, ...checkExtension, ...getInfo, ...dirty, ...ioctls, ...group, ...accounting, ...dmaEntryLimit, ...platform, ...vaddr,
];

{
  const ids = new Set<string>();
  for (const s of CATALOGUE) {
    if (ids.has(s.id)) throw new Error(`audit catalogue: scenario id ${s.id} twice`);
    if (!/^[a-z0-9-]+\.[a-z0-9-]+$/.test(s.id)) throw new Error(`audit catalogue: scenario id ${s.id} is not area.kebab-case`);
    ids.add(s.id);
  }
}
