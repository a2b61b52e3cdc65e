// The iommufd object table (main.c): an xarray with XA_FLAGS_ALLOC1 from which
// _iommufd_object_alloc takes IDs with xa_alloc(.., xa_limit_31b). So IDs
// start at 1 and each new one is the lowest free ID; destroyed IDs come back.
// An ID is reserved (XA_ZERO_ENTRY) while its object is being built and is
// only visible after iommufd_object_finalize; iommufd_object_abort frees it.
import { EBUSY, ENOENT, ENOSPC } from './errno.ts';

export type ObjectType = 'device' | 'hwpt_paging' | 'hwpt_nested' | 'ioas' | 'access' | 'fault' | 'selftest' | 'viommu' | 'vdevice' | 'veventq' | 'hw_queue';

export abstract class IommufdObject {
  abstract readonly type: ObjectType;
  id = 0;
  /**
   * refcount `users`: 1 for the table itself, plus one per holder (an attached
   * device on its HWPT, a HWPT on its IOAS, ...). IOMMU_DESTROY needs exactly 1
   * (iommufd_object_remove: refcount_dec_if_one), else EBUSY.
   */
  users = 1;
}

/** xa_limit_31b: IDs 1..INT_MAX. */
const ID_MAX = 0x7fff_ffff;

/** A min-heap of freed IDs, so "lowest free ID" is O(log n). */
class MinHeap {
  #a: number[] = [];
  get size(): number {
    return this.#a.length;
  }
  peek(): number | undefined {
    return this.#a[0];
  }
  push(v: number): void {
    const a = this.#a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= v) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = v;
  }
  pop(): number | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length && last !== undefined) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        let mv = last;
        if (l < a.length && a[l]! < mv) {
          m = l;
          mv = a[l]!;
        }
        if (r < a.length && a[r]! < mv) m = r;
        if (m === i) break;
        a[i] = a[m]!;
        i = m;
      }
      a[i] = last;
    }
    return top;
  }
}

export class ObjectTable {
  /** null stands for XA_ZERO_ENTRY: an ID reserved by an object under construction. */
  #entries = new Map<number, IommufdObject | null>();
  #freed = new MinHeap();
  #highest = 0;

  get size(): number {
    return this.#entries.size;
  }

  /** xa_empty(&ictx->objects): reserved IDs count too. */
  get isEmpty(): boolean {
    return this.#entries.size === 0;
  }

  /** _iommufd_object_alloc: reserve the lowest free ID for `obj`. Returns 0 or ENOSPC. */
  reserve(obj: IommufdObject): number {
    let id: number;
    if (this.#freed.size) id = this.#freed.pop()!;
    else if (this.#highest < ID_MAX) id = ++this.#highest;
    else return ENOSPC;
    obj.id = id;
    this.#entries.set(id, null);
    return 0;
  }

  /** iommufd_object_finalize: publish the object under its reserved ID. */
  finalize(obj: IommufdObject): void {
    this.#entries.set(obj.id, obj);
  }

  /** iommufd_object_abort: release the reserved (or published) ID. */
  abort(obj: IommufdObject): void {
    this.#release(obj.id);
  }

  #release(id: number): void {
    if (this.#entries.delete(id)) this.#freed.push(id);
  }

  /** iommufd_get_object: missing, reserved, wrong type or dying objects are all ENOENT (null). */
  get<T extends IommufdObject>(id: number, ...types: ObjectType[]): T | null {
    const obj = this.#entries.get(id);
    if (!obj || obj.users === 0) return null;
    if (types.length && !types.includes(obj.type)) return null;
    return obj as T;
  }

  /**
   * iommufd_object_remove(ictx, NULL, id, 0) as IOMMU_DESTROY uses it: ENOENT
   * for a missing or reserved ID, EBUSY unless the table holds the only
   * reference. On success the caller runs the type's destroy.
   */
  remove(id: number): { errno: number; obj: IommufdObject | null } {
    const obj = this.#entries.get(id);
    if (!obj) return { errno: ENOENT, obj: null };
    if (obj.users !== 1) return { errno: EBUSY, obj: null };
    obj.users = 0;
    this.#release(id);
    return { errno: 0, obj };
  }

  /**
   * iommufd_object_remove(ictx, obj, id, 0) with a caller reference (the
   * auto-domain put, iommufd_object_put_and_try_destroy): drop the caller's
   * reference, then destroy only if the table's is the last one.
   */
  putAndTryRemove(obj: IommufdObject): boolean {
    obj.users--;
    if (obj.users !== 1 || this.#entries.get(obj.id) !== obj) return false;
    obj.users = 0;
    this.#release(obj.id);
    return true;
  }

  /** Published objects in ID order (xa_for_each). */
  *objects(): Generator<IommufdObject> {
    const ids = [...this.#entries.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const o = this.#entries.get(id);
      if (o) yield o;
    }
  }

  /**
   * iommufd_object_remove(.., REMOVE_OBJ_TOMBSTONE) (7.x, iommufd_object_tombstone_user): the
   * object goes, its ID stays reserved (XA_ZERO_ENTRY: lookups and IOMMU_DESTROY see ENOENT)
   * and is never handed out again in this context.
   */
  tombstone(obj: IommufdObject): void {
    obj.users = 0;
    this.#entries.set(obj.id, null);
  }

  /** Drops an object from the table without the users check (fops_release, kernel-internal destroys). */
  erase(obj: IommufdObject): void {
    obj.users = 0;
    this.#release(obj.id);
  }
}
