// What /proc/self/status tells of this process's memory accounting: VmPin is
// mm->pinned_vm, VmLck mm->locked_vm, both printed in kB. The lockstep check,
// the audit's targets and the accounting suite all read them here.
import { readFileSync } from 'node:fs';

/** VmPin and VmLck in kB, from one read; throws if the kernel prints neither line (both exist since Linux 3.2). */
export function vmPinAndLckKiB(): { pin: number; lck: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`/proc/self/status has no ${field} line`);
    return Number(m[1]);
  };
  return { pin: kb('VmPin'), lck: kb('VmLck') };
}

/** VmPin and VmLck in 4 KiB pages (x86-64's PAGE_SIZE), as the kernel counts pinned_vm and locked_vm. */
export function pinnedAndLockedPages(): { pin: bigint; lck: bigint } {
  const { pin, lck } = vmPinAndLckKiB();
  return { pin: BigInt(pin) / 4n, lck: BigInt(lck) / 4n };
}
