import type { reporters, Test } from 'mocha';
declare const ConformanceReporter: typeof reporters.Spec & {
  /** A test's kselftest-style name: its titles joined by dots ('iommufd_ioas.mock_domain.area'). */
  ktapName(test: Test): string;
};
export = ConformanceReporter;
