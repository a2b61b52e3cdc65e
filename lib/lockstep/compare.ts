// Field-by-field comparison of a kernel result with the model's prediction.

export interface FieldDifference {
  /** Dotted path of the field, e.g. "ranges[1].last". */
  path: string;
  kernel: unknown;
  model: unknown;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Every difference between two results; `ignore` names top-level fields not compared (fds, raw buffers). */
export function differences(kernel: unknown, model: unknown, ignore: readonly string[] = [], path = ''): FieldDifference[] {
  if (kernel instanceof Uint8Array && model instanceof Uint8Array) {
    if (kernel.byteLength !== model.byteLength) return [{ path: `${path}.byteLength`, kernel: kernel.byteLength, model: model.byteLength }];
    for (let i = 0; i < kernel.byteLength; i++) {
      if (kernel[i] !== model[i]) return [{ path: `${path}[${i}]`, kernel: kernel[i], model: model[i] }];
    }
    return [];
  }
  if (Array.isArray(kernel) && Array.isArray(model)) {
    const out: FieldDifference[] = [];
    if (kernel.length !== model.length) out.push({ path: `${path}.length`, kernel: kernel.length, model: model.length });
    for (let i = 0; i < Math.min(kernel.length, model.length); i++) out.push(...differences(kernel[i], model[i], [], `${path}[${i}]`));
    return out;
  }
  if (isPlainObject(kernel) && isPlainObject(model)) {
    const out: FieldDifference[] = [];
    const visit = (key: string) => {
      if (path === '' && ignore.includes(key)) return;
      const k = kernel[key];
      const m = model[key];
      // Most fields are equal primitives: no recursion, no path string.
      if (k === m && (typeof k !== 'object' || k === null)) return;
      out.push(...differences(k, m, [], path === '' ? key : `${path}.${key}`));
    };
    for (const key of Object.keys(kernel)) visit(key);
    for (const key of Object.keys(model)) if (!Object.hasOwn(kernel, key)) visit(key);
    return out;
  }
  // Numbers and bigints stand for the same u64 field on both sides.
  const norm = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v);
  return Object.is(norm(kernel), norm(model)) || norm(kernel) === norm(model) ? [] : [{ path: path || '(result)', kernel, model }];
}

export function show(v: unknown): string {
  // Device files (and lockstep proxies of them) by path, not by their innards.
  if (typeof v === 'object' && v !== null && 'path' in v && 'sys' in v) return `<${String((v as { path: unknown }).path)}>`;
  if (typeof v === 'bigint') return v > 0xffffn ? `0x${v.toString(16)}` : v.toString();
  if (v instanceof Uint8Array) return `<${v.byteLength} bytes>`;
  if (v === undefined) return '(absent)';
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? (x > 0xffffn ? `0x${x.toString(16)}` : x.toString()) : x instanceof Uint8Array ? `<${x.byteLength} bytes>` : x));
}
