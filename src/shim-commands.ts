import { resolve } from 'node:path';
import { COMMAND_FLAGS, SHIM_COMMAND, goFlagParse } from './argv';
import type { NodeConfig } from './config';
import { prepareCreate } from './create';
import { ShimError } from './errors';
import { writeStdout } from './log';

/**
 * The shim's own commands, under a command word no runtime uses:
 * `strict-groups-runtime strict-groups <command>`. They print to stdout: they
 * are run by an operator, never by a CRI runtime.
 */

declare const STRICT_GROUPS_VERSION: string | undefined;
const VERSION = typeof STRICT_GROUPS_VERSION === 'string' ? STRICT_GROUPS_VERSION : 'dev';

const USAGE = `usage: strict-groups-runtime ${SHIM_COMMAND} <command>

commands:
  dry-run [--bundle DIR]   print the decision a create would make for the OCI
                           bundle DIR (default: the current directory) as JSON;
                           changes nothing
  install [options]        install on this node and wire the runtime handler
                           into containerd or CRI-O (what install.sh runs;
                           "install --help" lists the options)
  daemonset install|uninstall [options]
                           what the installer and cleanup DaemonSets run:
                           install or uninstall once, then stay up until
                           SIGTERM ("daemonset --help")
  version                  print the strict-groups-runtime version
  help                     print this text

Any other command line is runc's, passed to the configured runtime.
`;

/** Every command but daemonset finishes synchronously; daemonset resolves at SIGTERM. */
export function runShimCommand(args: readonly string[], config: () => { config: NodeConfig; path: string }, cwd: string): void | Promise<void> {
  const [command, ...rest] = args;
  switch (command) {
    case 'dry-run': {
      const parsed = goFlagParse(rest, COMMAND_FLAGS.get('create')!);
      if (parsed.error !== undefined || parsed.positionals.length > 0) {
        throw new ShimError(`${SHIM_COMMAND} dry-run: ${parsed.error ?? `unexpected argument ${parsed.positionals[0]}`}`);
      }
      const bundle = resolve(cwd, parsed.values.get('bundle') ?? '');
      const { config: settings, path } = config();
      const { decision } = prepareCreate(bundle, settings, { dryRun: true });
      const { changed: _changed, ...shown } = decision;
      writeStdout(JSON.stringify({ bundle, config: path, ...shown }, null, 2) + '\n');
      return;
    }
    case 'install': {
      const { runInstall } = require('./install/install') as typeof import('./install/install');
      runInstall(rest, process.execPath);
      return;
    }
    case 'daemonset': {
      const { runDaemonSet } = require('./install/daemon') as typeof import('./install/daemon');
      return runDaemonSet(rest, process.execPath, VERSION);
    }
    case 'version':
      writeStdout(`strict-groups-runtime ${VERSION}\n`);
      return;
    case 'help':
    case '--help':
    case '-h':
    case undefined:
      writeStdout(USAGE);
      return;
    default:
      throw new ShimError(`unknown command "${SHIM_COMMAND} ${command}"; see "${SHIM_COMMAND} help"`);
  }
}
