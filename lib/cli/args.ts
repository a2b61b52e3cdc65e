// A small, strict option parser: unknown options are errors, not ignored.

export interface OptionSpec {
  [name: string]: { type: 'string' | 'boolean'; default?: string | boolean; help: string };
}

export type ParsedOptions = Record<string, string | boolean | undefined>;

export class UsageError extends Error {
  override name = 'UsageError';
}

export function parseOptions(argv: string[], spec: OptionSpec): { options: ParsedOptions; rest: string[] } {
  const options: ParsedOptions = {};
  const rest: string[] = [];
  for (const [name, s] of Object.entries(spec)) if (s.default !== undefined) options[name] = s.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      rest.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const s = spec[name];
    if (!s) throw new UsageError(`unknown option --${name}`);
    if (s.type === 'boolean') {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      options[name] = true;
    } else {
      const value = eq !== -1 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      options[name] = value;
    }
  }
  return { options, rest };
}

export function usageOf(spec: OptionSpec): string {
  return Object.entries(spec)
    .map(([name, s]) => `  --${name}${s.type === 'string' ? ' VALUE' : ''}`.padEnd(28) + s.help + (s.default !== undefined && s.default !== false ? ` (default: ${s.default})` : ''))
    .join('\n');
}
