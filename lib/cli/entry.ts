// The CLI as a program (the bundled guest entry point; bin/ registers tsx first and imports main.ts).
import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2));
