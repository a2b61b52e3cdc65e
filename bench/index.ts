// Runs every benchmark in turn: npx tsx bench/index.ts (npm run bench;
// `npm run bench -- --kernel-version 7.2` boots another kernel series).
// Where /dev/iommu exists the ioctl figures come from a real iommufd ioctl;
// elsewhere from ENOTTY on /dev/null (the system-call path alone).
import { iommufdIovaRangesTarget } from './iommufd-target.ts';
import { benchFuzzMutations } from './fuzz.ts';
import { benchKernelBuild } from './kbuild.ts';
import { benchIoctl, NULL_ENOTTY_TARGET } from './ioctl.ts';
import { benchLockstepOverhead } from './lockstep.ts';
import { benchModel } from './model.ts';
import { benchSelftestMirror } from './selftest-mirror.ts';
import { parseArgs } from 'node:util';
import { DEFAULT_KERNEL_SERIES, parseKernelSeries } from '../lib/kbuild/series.ts';

const { values } = parseArgs({ options: { 'kernel-version': { type: 'string', default: DEFAULT_KERNEL_SERIES } }, strict: true });
const series = parseKernelSeries(values['kernel-version']);

await benchIoctl(iommufdIovaRangesTarget() ?? NULL_ENOTTY_TARGET);
console.log('');
benchModel();
console.log('');
benchLockstepOverhead();
console.log('');
await benchSelftestMirror(series);
console.log('');
benchFuzzMutations(series);
console.log('');
// Both series the goal names; the one-file rebuild on the series this bench runs on.
await benchKernelBuild(['6.12', '7.2'], series);
