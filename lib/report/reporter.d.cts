import type { reporters } from 'mocha';
declare const ConformanceReporter: typeof reporters.Spec;
export = ConformanceReporter;
