// The type1 platforms of the profiles' guests as the model derives them from the texts those guests show
// (lib/model/type1-platform.ts), for the unit suites that run the model on them.
import { type1PlatformFrom, type Type1Platform } from '../../lib/model/type1-platform.ts';

/** The amd profile on an io-pgtable kernel (6.1, 6.12): AMD-Vi's v1 table, interrupt remapping on. */
export const AMD_IO_PGTABLE_PLATFORM: Type1Platform = type1PlatformFrom({
  driver: 'amd-iommu',
  reservedRegions: '0x00000000fee00000 0x00000000feefffff msi\n',
  cmdline: 'console=ttyS0',
  dmesg: 'AMD-Vi: Interrupt remapping enabled\n',
  allowUnsafeInterrupts: 'N\n',
  dmaEntryLimit: '65535\n',
});
