/**
 * runc's command line, read the way runc reads it, so that the shim finds the
 * same bundle, container id and process file the real runtime will use. The
 * shim never rebuilds the command line: the real runtime gets the original
 * argv byte for byte; this only locates what the shim must act on.
 *
 * Global options are Go `flag` syntax: "-x" or "--x", "-x=v" or "-x v", parsing
 * stops at the first non-flag (the command) or "--". Except for exec, runc's
 * urfave/cli v1 first reorders a subcommand's arguments so that flags may
 * follow the container id (`create ID --bundle B`), then parses them with Go
 * `flag` again. The reordering changed in urfave/cli v1.22.2 (Debian's runc
 * 1.1.5, runc 1.2+) and upstream runc 1.1.x still has the old one; both
 * readings are taken, and where they disagree, or where the grammar cannot say
 * what a create, run, restore or exec would act on, the result is `unclear`
 * and the shim refuses rather than guess. crun (GNU argp, in order) agrees on
 * every form containerd and CRI-O send; its abbreviations and option clusters
 * are unknown flags here, hence unclear.
 */

export interface FlagSpec {
  /** Every name, without dashes: ["bundle", "b"]. */
  names: readonly string[];
  takesValue: boolean;
  /** Set for flags the shim cannot honour; the text says why. */
  unsupported?: string;
}

type FlagTable = ReadonlyMap<string, FlagSpec>;

export function table(valueFlags: string[], boolFlags: string[], unsupported: Record<string, string> = {}): FlagTable {
  const map = new Map<string, FlagSpec>();
  const add = (spec: FlagSpec): void => {
    for (const name of spec.names) map.set(name, spec);
  };
  for (const entry of valueFlags) add({ names: entry.split('|'), takesValue: true });
  for (const entry of boolFlags) add({ names: entry.split('|'), takesValue: false });
  for (const [entry, why] of Object.entries(unsupported)) add({ names: entry.split('|'), takesValue: true, unsupported: why });
  return map;
}

/** runc's and crun's global options. */
const GLOBAL_FLAGS = table(
  ['root', 'log', 'log-format', 'criu', 'rootless', 'cgroup-manager', 'log-level', 'program-name'],
  ['debug', 'systemd-cgroup', 'help|h|?', 'version|v|V', 'usage'],
);

const HELP = 'help|h|?';
const CRUN_CONFIG = { 'config|f': "crun --config names a config file other than the bundle's config.json" };

/**
 * Subcommands whose arguments the shim reads: runc 1.1 to 1.4 and crun 1.8+
 * flags together (a flag only one of them has changes nothing the shim reads).
 * A Map: a command word is the caller's, and "toString" or "__proto__" must
 * find nothing, as on an object it would find Object.prototype's.
 */
export const COMMAND_FLAGS: ReadonlyMap<string, FlagTable> = new Map(Object.entries({
  create: table(
    ['bundle|b', 'console-socket', 'pidfd-socket', 'pid-file', 'preserve-fds'],
    ['no-pivot', 'no-new-keyring', 'no-subreaper', HELP],
    CRUN_CONFIG,
  ),
  run: table(
    ['bundle|b', 'console-socket', 'pidfd-socket', 'pid-file', 'preserve-fds'],
    ['detach|d', 'keep', 'no-subreaper', 'no-pivot', 'no-new-keyring', HELP],
    CRUN_CONFIG,
  ),
  restore: table(
    ['console-socket', 'image-path', 'work-path', 'manage-cgroups-mode', 'bundle|b', 'pid-file', 'empty-ns', 'lsm-profile', 'lsm-mount-context', 'network-lock'],
    ['tcp-established', 'tcp-close', 'ext-unix-sk', 'shell-job', 'file-locks', 'detach|d', 'no-subreaper', 'no-pivot', 'auto-dedup', 'lazy-pages', HELP],
  ),
  exec: table(
    ['console-socket', 'pidfd-socket', 'cwd', 'env|e', 'user|u', 'additional-gids|g', 'process|p', 'pid-file', 'process-label', 'apparmor', 'cap|c', 'preserve-fds', 'cgroup'],
    ['tty|t', 'detach|d', 'no-new-privs', 'ignore-paused', HELP],
  ),
  checkpoint: table(
    ['image-path', 'work-path', 'parent-path', 'page-server', 'manage-cgroups-mode', 'empty-ns', 'status-fd', 'network-lock'],
    ['leave-running', 'tcp-established', 'tcp-skip-in-flight', 'link-remap', 'ext-unix-sk', 'shell-job', 'lazy-pages', 'file-locks', 'pre-dump', 'auto-dedup', HELP],
  ),
}));

/** runc parses exec's arguments as they come (urfave SkipArgReorder). */
const UNREORDERED: ReadonlySet<string> = new Set(['exec']);

/** Commands that start a container from a bundle: the shim rewrites its config.json first. */
const CREATE_COMMANDS: ReadonlySet<string> = new Set(['create', 'run', 'restore']);
/** The command word of the shim's own commands; no runtime will ever have it. */
export const SHIM_COMMAND = 'strict-groups';

export interface Globals {
  /** The --log file, if given. */
  log?: string | undefined;
  /** The --log-format value, if given. */
  logFormat?: string | undefined;
  /** The global arguments minus logging, for the shim's own `state` query. */
  forState: string[];
  /** The --root value, if given: where the runtime keeps its containers' state. */
  root?: string | undefined;
}

/** Extra descriptors the real runtime expects to inherit. */
export interface InheritedFds {
  /** --preserve-fds N: fds 3 .. 3+N-1. */
  preserveFds: number;
  /** --status-fd N of checkpoint/restore. */
  statusFd?: number;
}

export type Invocation =
  | { kind: 'passthrough'; globals: Globals; command: string | undefined; fds: InheritedFds }
  | { kind: 'create'; globals: Globals; command: string; id: string; bundle: string; fds: InheritedFds }
  | { kind: 'exec'; globals: Globals; id: string; processFile: string | undefined; fds: InheritedFds }
  | { kind: 'shim'; globals: Globals; args: string[] }
  | { kind: 'unclear'; globals: Globals; reason: string };

const ACTING_COMMANDS: ReadonlySet<string> = new Set([...CREATE_COMMANDS, 'exec']);

interface FlagToken {
  name: string;
  value: string | undefined;
}

/** Go flag's view of one word: a flag (name and inline value), "--", or not a flag. */
function flagToken(word: string): FlagToken | '--' | undefined {
  if (word.length < 2 || word[0] !== '-') return undefined;
  if (word === '--') return '--';
  const body = word.startsWith('--') ? word.slice(2) : word.slice(1);
  const eq = body.indexOf('=');
  return eq === -1 ? { name: body, value: undefined } : { name: body.slice(0, eq), value: body.slice(eq + 1) };
}

/** Go's strconv.ParseBool. */
function goBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

export interface ParsedFlags {
  /** Value flags by their first name; the last occurrence wins, as for a Go string flag. */
  values: Map<string, string>;
  booleans: Map<string, boolean>;
  positionals: string[];
  /** Why runc itself would reject these arguments, if it would. */
  error?: string;
}

/**
 * Go flag.Parse over `words` with a known flag table, then urfave's check
 * that no flag was given under two of its names. A value flag takes the next
 * word whatever it is.
 */
export function goFlagParse(words: readonly string[], flags: FlagTable): ParsedFlags {
  const out: ParsedFlags = { values: new Map(), booleans: new Map(), positionals: [] };
  const formUsed = new Map<FlagSpec, string>();
  let i = 0;
  for (; i < words.length; i++) {
    const token = flagToken(words[i]!);
    if (token === undefined) break;
    if (token === '--') {
      i++;
      break;
    }
    if (token.name === '' || token.name[0] === '-' || token.name[0] === '=') {
      out.error = `bad flag syntax: ${words[i]}`;
      return out;
    }
    const spec = flags.get(token.name);
    if (spec === undefined) {
      out.error = `flag provided but not defined: -${token.name}`;
      return out;
    }
    if (spec.unsupported !== undefined) {
      out.error = `unsupported option --${spec.names[0]}: ${spec.unsupported}`;
      return out;
    }
    const other = formUsed.get(spec);
    if (other !== undefined && other !== token.name) {
      out.error = `Cannot use two forms of the same flag: ${other} ${token.name}`;
      return out;
    }
    formUsed.set(spec, token.name);
    const key = spec.names[0]!;
    if (!spec.takesValue) {
      const value = token.value === undefined ? true : goBool(token.value);
      if (value === undefined) {
        out.error = `invalid boolean value ${JSON.stringify(token.value)} for -${token.name}`;
        return out;
      }
      out.booleans.set(key, value);
    } else if (token.value !== undefined) {
      out.values.set(key, token.value);
    } else if (i + 1 < words.length) {
      out.values.set(key, words[++i]!);
    } else {
      out.error = `flag needs an argument: -${token.name}`;
      return out;
    }
  }
  out.positionals = words.slice(i);
  return out;
}

/** urfave/cli v1.22.2+ argIsFlag: a word naming one of the command's flags. */
function namesKnownFlag(word: string, flags: FlagTable): boolean {
  if (word === '-' || word === '--' || !word.startsWith('-')) return false;
  let body = word.startsWith('--') ? word.slice(2) : word;
  if (body.startsWith('-')) body = body.slice(1);
  return flags.has(body.split('=')[0]!);
}

/**
 * urfave/cli v1.22.1 reorderArgs (upstream runc 1.1.x): every dashed word is
 * a flag and takes the next undashed word with it; "--" and all after it stay.
 */
export function reorderArgsV1221(words: readonly string[]): string[] {
  const flagsFirst: string[] = [];
  const rest: string[] = [];
  let readValue = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--') {
      rest.push(...words.slice(i));
      break;
    }
    if (readValue && !word.startsWith('-')) {
      readValue = false;
      flagsFirst.push(word);
      continue;
    }
    readValue = false;
    if (word !== '-' && word.startsWith('-')) {
      flagsFirst.push(word);
      readValue = !word.includes('=');
    } else {
      rest.push(word);
    }
  }
  return [...flagsFirst, ...rest];
}

/**
 * urfave/cli v1.22.2+ reorderArgs (Debian's runc 1.1.5, runc 1.2 to 1.4): only
 * the command's own flags move, each with the next word unless that names a
 * flag too; a "--" not taken as a value moves to the front of the rest.
 */
export function reorderArgsV1222(words: readonly string[], flags: FlagTable): string[] {
  const flagsFirst: string[] = [];
  let rest: string[] = [];
  let nextMayBeValue = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (nextMayBeValue && !namesKnownFlag(word, flags)) {
      nextMayBeValue = false;
      flagsFirst.push(word);
    } else if (word === '--') {
      rest = ['--', ...rest, ...words.slice(i + 1)];
      break;
    } else if (namesKnownFlag(word, flags)) {
      flagsFirst.push(word);
      nextMayBeValue = !word.includes('=');
    } else {
      rest.push(word);
    }
  }
  return [...flagsFirst, ...rest];
}

/** What a parse means to the shim; two readings that agree on this agree. */
function meaning(parsed: ParsedFlags): string {
  return JSON.stringify([
    parsed.error !== undefined,
    parsed.positionals,
    parsed.booleans.get('help') ?? false,
    ['bundle', 'process', 'preserve-fds', 'status-fd'].map((key) => parsed.values.get(key) ?? null),
  ]);
}

/**
 * A subcommand's own arguments as runc reads them: without reordering for
 * exec, else under both urfave reorderings; `disagree` when those differ.
 */
function parseCommandArgs(command: string, words: readonly string[], flags: FlagTable): ParsedFlags & { disagree?: true } {
  if (UNREORDERED.has(command)) return goFlagParse(words, flags);
  const newer = goFlagParse(reorderArgsV1222(words, flags), flags);
  const older = goFlagParse(reorderArgsV1221(words), flags);
  return meaning(newer) === meaning(older) ? newer : { ...newer, disagree: true };
}

/**
 * A descriptor count both runtimes read alike: runc parses Go base 0 ("010"
 * is 8, "0x3" is 3), crun base 10, so only plain decimals are unambiguous.
 */
function plainDecimal(text: string | undefined): number | undefined {
  if (text === undefined || !/^(0|[1-9][0-9]{0,8})$/.test(text)) return undefined;
  return Number(text);
}

/** Go's strconv.ParseInt(text, 0, 64) for the small non-negative values an fd can take. */
function goIntBase0(text: string): number | undefined {
  const match = /^\+?(?:0[xX]([0-9a-fA-F]+)|0[oO]?([0-7]+)|0[bB]([01]+)|([1-9][0-9]*|0))$/.exec(text);
  if (match === null) return undefined;
  const [, hex, octal, binary, decimal] = match;
  const value =
    hex !== undefined ? parseInt(hex, 16) : octal !== undefined ? parseInt(octal, 8) : binary !== undefined ? parseInt(binary, 2) : Number(decimal);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Splits the global options off, as Go flag does at the top level. */
function parseGlobals(argv: readonly string[]): { globals: Globals; rest: string[]; unknown?: string; infoOnly: boolean } {
  const globals: Globals = { forState: [] };
  let unknown: string | undefined;
  let infoOnly = false;
  let i = 0;
  for (; i < argv.length; i++) {
    const word = argv[i]!;
    const token = flagToken(word);
    if (token === undefined) break;
    if (token === '--') {
      i++;
      break;
    }
    const spec = GLOBAL_FLAGS.get(token.name);
    if (spec === undefined) {
      // Whether it takes a value is unknown, so the command word is too.
      unknown ??= word;
      globals.forState.push(word);
      continue;
    }
    const key = spec.names[0]!;
    let value = token.value;
    const words = [word];
    if (spec.takesValue && value === undefined && i + 1 < argv.length) {
      value = argv[++i]!;
      words.push(value);
    }
    // --help and --version print and exit, whatever command follows.
    if ((key === 'help' || key === 'version' || key === 'usage') && value !== 'false') infoOnly = true;
    if (key === 'root' && value !== undefined) globals.root = value;
    if (key === 'log') globals.log = value;
    else if (key === 'log-format') globals.logFormat = value;
    else if (key !== 'debug' && key !== 'log-level') globals.forState.push(...words);
  }
  const rest = argv.slice(i);
  return unknown === undefined ? { globals, rest, infoOnly } : { globals, rest, unknown, infoOnly };
}

/**
 * What the real runtime will do with these arguments, as far as the shim
 * cares. `argv` excludes the program name.
 */
export function parseInvocation(argv: readonly string[]): Invocation {
  const { globals, rest, unknown, infoOnly } = parseGlobals(argv);
  const passthrough = (command: string | undefined, fds: InheritedFds = { preserveFds: 0 }): Invocation => ({
    kind: 'passthrough',
    globals,
    command,
    fds,
  });
  const unclear = (reason: string): Invocation => ({ kind: 'unclear', globals, reason });

  if (unknown !== undefined) {
    if (rest.some((word) => ACTING_COMMANDS.has(word) || word === SHIM_COMMAND)) {
      return unclear(`unknown global option ${unknown}: cannot tell which command follows`);
    }
    return passthrough(undefined);
  }

  const command = rest[0];
  const args = rest.slice(1);
  if (infoOnly) return passthrough(command);
  if (command === SHIM_COMMAND) return { kind: 'shim', globals, args };
  const flags = command === undefined ? undefined : COMMAND_FLAGS.get(command);
  if (command === undefined || flags === undefined) return passthrough(command);

  const parsed = parseCommandArgs(command, args, flags);
  const acting = ACTING_COMMANDS.has(command);
  if (acting && parsed.disagree) {
    return unclear(`${command}: runc versions read these arguments differently: ${JSON.stringify(args)}`);
  }
  if (parsed.error !== undefined) {
    // The runtime would refuse these arguments too, but another runtime's
    // grammar might accept them: never let a create or exec through unread.
    return acting ? unclear(`${command}: ${parsed.error}`) : passthrough(command);
  }

  const fds: InheritedFds = { preserveFds: 0 };
  const preserve = parsed.values.get('preserve-fds');
  if (preserve !== undefined) {
    const n = plainDecimal(preserve);
    if (n === undefined) return unclear(`${command}: --preserve-fds ${JSON.stringify(preserve)} is not a plain decimal count`);
    fds.preserveFds = n;
  }
  // Only runc has --status-fd (checkpoint), so Go's reading is the one.
  const statusFd = goIntBase0(parsed.values.get('status-fd') ?? '');
  if (statusFd !== undefined) fds.statusFd = statusFd;

  // --help prints usage and acts on nothing; so does a missing container id.
  const id = parsed.positionals[0];
  if (!acting || parsed.booleans.get('help') === true || id === undefined) return passthrough(command, fds);
  if (command === 'exec') {
    return { kind: 'exec', globals, id, processFile: parsed.values.get('process'), fds };
  }
  if (parsed.positionals.length > 1) {
    return unclear(`${command} takes one container id, got ${JSON.stringify(parsed.positionals)}`);
  }
  return { kind: 'create', globals, command, id, bundle: parsed.values.get('bundle') ?? '', fds };
}
