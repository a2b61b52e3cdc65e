// Runs every benchmark in turn: npx tsx bench/index.ts (npm run bench).
// Where /dev/iommu exists the ioctl figures come from a real iommufd ioctl;
// elsewhere from ENOTTY on /dev/null (the system-call path alone).
import { iommufdIovaRangesTarget } from './iommufd-target.ts';
import { benchFuzzMutations } from './fuzz.ts';
import { benchIoctl, NULL_ENOTTY_TARGET } from './ioctl.ts';
import { benchLockstepOverhead } from './lockstep.ts';
import { benchModel } from './model.ts';
import { benchSelftestMirror } from './selftest-mirror.ts';

await benchIoctl(iommufdIovaRangesTarget() ?? NULL_ENOTTY_TARGET);
console.log('');
benchModel();
console.log('');
benchLockstepOverhead();
console.log('');
await benchSelftestMirror();
console.log('');
benchFuzzMutations();
