// Option parsing on node:util parseArgs, strict: an unknown option, a missing
// value or a stray word is a UsageError (exit 2), never ignored. Option specs
// are declarative (lib/cli/options.ts) so that help text and parsing come
// from one table.
import { parseArgs } from 'node:util';

export interface OptionDef {
  type: 'string' | 'boolean';
  /** May be given more than once (the value is then an array). */
  multiple?: boolean;
  default?: string | boolean;
  /** Placeholder for the value in help, e.g. DIR. */
  value?: string;
  help: string;
}

export type OptionSpec = Record<string, OptionDef>;

export type OptionValue = string | boolean | string[] | undefined;
export type ParsedOptions = Record<string, OptionValue>;

export class UsageError extends Error {
  override name = 'UsageError';
}

/** The quoted name parseArgs puts first in its messages ("Unknown option '--nope'..."). */
function quoted(message: string): string {
  return /'([^']*)'/.exec(message)?.[1] ?? message;
}

/** Parses `argv` against `spec` (plus --help/-h); throws a UsageError for anything it does not know. */
export function parseOptions(argv: string[], spec: OptionSpec): ParsedOptions {
  return parseCommandLine(argv, spec, false).values;
}

/** As parseOptions, for a command that also takes words (merge's result folders): returns them in order. */
export function parseCommandLine(argv: string[], spec: OptionSpec, allowPositionals: boolean): { values: ParsedOptions; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; default?: string | boolean; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, d] of Object.entries(spec)) {
    options[name] = { type: d.type, ...(d.multiple ? { multiple: true } : {}), ...(d.default !== undefined ? { default: d.default } : {}) };
  }
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals });
    return { values: values as ParsedOptions, positionals };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    switch (e.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
        throw new UsageError(`unknown option ${quoted(e.message)}`);
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
        throw new UsageError(`unexpected argument '${quoted(e.message)}'`);
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
        const option = quoted(e.message).split(' ')[0];
        throw new UsageError(/argument missing/.test(e.message) ? `${option} needs a value` : `${option}: ${e.message}`);
      }
      default:
        throw err;
    }
  }
}

export function usageOf(spec: OptionSpec): string {
  return Object.entries(spec)
    .map(([name, s]) => {
      const flag = `  --${name}${s.type === 'string' ? ` ${s.value ?? 'VALUE'}` : ''}`;
      const extra = [s.multiple ? 'repeatable' : '', s.default !== undefined && s.default !== false ? `default: ${s.default}` : ''].filter(Boolean).join('; ');
      return `${flag.padEnd(30)}${s.help}${extra ? ` (${extra})` : ''}`;
    })
    .join('\n');
}
