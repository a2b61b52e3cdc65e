// Runs every benchmark in turn: npx tsx bench/index.ts (npm run bench).
import { benchIoctl } from './ioctl.ts';

await benchIoctl();
