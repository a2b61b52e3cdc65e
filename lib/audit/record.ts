// Recording an audit scenario: every ioctl a scenario body issues becomes a
// Step (the errno by name, the outputs that matter as JSON values), and the
// kernel's and the model's observations of one scenario are compared step by
// step. Pure: no kernel, no model, no I/O.
import { errnoName } from '../sys/errno.ts';
import type { Observation, OutValue, Step } from './types.ts';

/** 'OK' for 0, else the errno's name ('EINVAL'), never a number. */
export function errnoLabel(errno: number): string {
  return errno === 0 ? 'OK' : errnoName(errno);
}

/** An output as the raw format keeps it: bigints as decimal strings, the rest as they are. */
export function outValue(v: bigint | number | boolean | string | null | undefined): OutValue {
  if (v === undefined) return null;
  return typeof v === 'bigint' ? v.toString() : v;
}

export function hex(v: bigint | number): string {
  return `0x${BigInt(v).toString(16)}`;
}

/** The steps of one run of a scenario on one side (kernel or model). */
export class StepRecorder {
  readonly steps: Step[] = [];

  record(
    op: string,
    errno: number,
    parts: { in?: Record<string, OutValue>; out?: Record<string, OutValue>; normalised?: Record<string, OutValue>; unknown?: Step['unknown'] } = {},
  ): Step {
    const step: Step = { op, errno: errnoLabel(errno) };
    if (parts.in && Object.keys(parts.in).length > 0) step.in = parts.in;
    if (parts.out && Object.keys(parts.out).length > 0) step.out = parts.out;
    if (parts.normalised && Object.keys(parts.normalised).length > 0) step.normalised = parts.normalised;
    if (parts.unknown && Object.keys(parts.unknown).length > 0) step.unknown = parts.unknown;
    this.steps.push(step);
    return step;
  }

  observation(): Observation {
    return { steps: this.steps.map((s) => structuredClone(s)) };
  }
}

export interface StepDifference {
  step: number;
  op: string;
  field: string;
  kernel: OutValue | undefined;
  model: OutValue | undefined;
}

/**
 * Every difference between the kernel's and the model's observation of the
 * same scenario: the op, the errno and every out field of every step, and
 * the number of steps. (`normalised` is derived from `out` and is not
 * compared separately.)
 */
export function observationDifferences(kernel: Observation, model: Observation): StepDifference[] {
  const out: StepDifference[] = [];
  const n = Math.max(kernel.steps.length, model.steps.length);
  for (let i = 0; i < n; i++) {
    const k = kernel.steps[i];
    const m = model.steps[i];
    if (!k || !m) {
      out.push({ step: i, op: (k ?? m)!.op, field: '(step)', kernel: k ? 'present' : 'absent', model: m ? 'present' : 'absent' });
      continue;
    }
    if (k.op !== m.op) out.push({ step: i, op: k.op, field: 'op', kernel: k.op, model: m.op });
    if (k.errno !== m.errno) out.push({ step: i, op: k.op, field: 'errno', kernel: k.errno, model: m.errno });
    const keys = new Set([...Object.keys(k.out ?? {}), ...Object.keys(m.out ?? {})]);
    for (const key of keys) {
      const kv = k.out?.[key];
      const mv = m.out?.[key];
      if (kv !== mv && !sameButUnknownBits(kv, mv, m.unknown?.[key]?.bits)) out.push({ step: i, op: k.op, field: `out.${key}`, kernel: kv, model: mv });
    }
  }
  return out;
}

/** Two hex values equal but for the bits the model left unknown (Step.unknown). */
function sameButUnknownBits(kernel: OutValue | undefined, model: OutValue | undefined, bits: string | undefined): boolean {
  const hexValue = /^0x[0-9a-f]+$/;
  if (bits === undefined || typeof kernel !== 'string' || typeof model !== 'string' || !hexValue.test(kernel) || !hexValue.test(model)) return false;
  const known = ~BigInt(bits);
  return (BigInt(kernel) & known) === (BigInt(model) & known);
}

/** What the model left unchecked in its observation: "step 0 VFIO_IOMMU_GET_INFO: out.iova_pgsizes bits 0x...: reason". */
export function modelUnknowns(model: Observation): string[] {
  return model.steps.flatMap((s, i) => Object.entries(s.unknown ?? {}).map(([key, u]) => `step ${i} ${s.op}: out.${key} bits ${u.bits}: ${u.reason}`));
}

/** The reasons the model left something unchecked in its observation (Step.unknown). */
export function modelUnknownReasons(model: Observation): string[] {
  return model.steps.flatMap((s) => Object.values(s.unknown ?? {}).map((u) => u.reason));
}

/** A readable report of the differences, with both observations' steps for context. */
export function divergenceReport(title: string, kernel: Observation, model: Observation, diffs: StepDifference[]): string {
  const show = (v: OutValue | undefined) => (v === undefined ? '(absent)' : JSON.stringify(v));
  const width = Math.max(5, ...diffs.map((d) => `#${d.step} ${d.op} ${d.field}`.length));
  const stepLine = (s: Step | undefined) => (s ? `${s.op} -> ${s.errno}${s.out ? ` ${JSON.stringify(s.out)}` : ''}` : '(none)');
  const lines = [
    `model and kernel differ in ${title}`,
    `  ${'field'.padEnd(width)}  kernel                 model`,
    ...diffs.map((d) => `  ${`#${d.step} ${d.op} ${d.field}`.padEnd(width)}  ${show(d.kernel).padEnd(22)} ${show(d.model)}`),
    '  steps (kernel | model):',
  ];
  const n = Math.max(kernel.steps.length, model.steps.length);
  for (let i = 0; i < n; i++) lines.push(`    #${i} ${stepLine(kernel.steps[i])}  |  ${stepLine(model.steps[i])}`);
  return lines.join('\n');
}
