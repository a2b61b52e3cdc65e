// Runs every benchmark in turn: npx tsx bench/index.ts (npm run bench;
// `npm run bench -- --kernel-version 7.2` boots another kernel series;
// `npm run bench -- --only boot,lockstep` runs only those parts).
// Where /dev/iommu exists the ioctl figures come from a real iommufd ioctl;
// elsewhere from ENOTTY on /dev/null (the system-call path alone).
import { iommufdIovaRangesTarget } from './iommufd-target.ts';
import { benchBoot } from './boot.ts';
import { benchFuzzMutations } from './fuzz.ts';
import { benchKernelBuild } from './kbuild.ts';
import { benchIoctl, NULL_ENOTTY_TARGET } from './ioctl.ts';
import { benchLockstepOverhead } from './lockstep.ts';
import { benchModel } from './model.ts';
import { benchSelftestMirror } from './selftest-mirror.ts';
import { parseArgs } from 'node:util';
import { DEFAULT_KERNEL_SERIES, parseKernelSeries, type KernelSeries } from '../lib/kbuild/series.ts';

const PARTS: Record<string, (series: KernelSeries) => void | Promise<void>> = {
  ioctl: async () => {
    await benchIoctl(iommufdIovaRangesTarget() ?? NULL_ENOTTY_TARGET);
  },
  model: () => {
    benchModel();
  },
  lockstep: () => benchLockstepOverhead(),
  'selftest-mirror': (series) => benchSelftestMirror(series),
  fuzz: (series) => benchFuzzMutations(series),
  boot: (series) => benchBoot(series),
  // Both series the goal names; the one-file rebuild on the series this bench runs on.
  kbuild: (series) => benchKernelBuild(['6.12', '7.2'], series),
};

const { values } = parseArgs({
  options: {
    'kernel-version': { type: 'string', default: DEFAULT_KERNEL_SERIES },
    only: { type: 'string', default: Object.keys(PARTS).join(',') },
  },
  strict: true,
});
const series = parseKernelSeries(values['kernel-version']);
const only = values.only.split(',').map((s) => s.trim());
const unknown = only.filter((p) => !(p in PARTS));
if (unknown.length > 0) {
  console.error(`bench: unknown part(s) ${unknown.join(', ')}: --only takes ${Object.keys(PARTS).join(', ')}, comma-separated`);
  process.exit(2);
}

for (const [i, part] of only.entries()) {
  if (i > 0) console.log('');
  await PARTS[part]!(series);
}
