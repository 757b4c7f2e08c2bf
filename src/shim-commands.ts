import { basename, resolve } from 'node:path';
import { SHIM_COMMAND, goFlagParse, table } from './argv';
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
  dry-run [--bundle DIR] [--id ID] [--cri-socket PATH]
                           print the decision a create would make for the OCI
                           bundle DIR (default: the current directory) as JSON;
                           changes nothing. A containerd CRI container's
                           declared gids are asked of containerd's CRI about
                           container ID (default: the bundle directory's name,
                           as containerd names it) at PATH (default: where the
                           environment says, else /run/containerd/containerd.sock)
  report [options]         every container the runtime knows on this node, and
                           what strict-groups decided for it (table, JSON, or
                           Prometheus text); "report --help" lists the options
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

const DRY_RUN_FLAGS = table(['bundle|b', 'id', 'cri-socket'], ['help|h']);
/** containerd's default gRPC socket, for a dry run outside containerd's environment. */
const CONTAINERD_DEFAULT_SOCKET = '/run/containerd/containerd.sock';

export async function runShimCommand(
  args: readonly string[],
  config: () => { config: NodeConfig; path: string },
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const [command, ...rest] = args;
  switch (command) {
    case 'dry-run': {
      const parsed = goFlagParse(rest, DRY_RUN_FLAGS);
      if (parsed.error !== undefined || parsed.positionals.length > 0) {
        throw new ShimError(`${SHIM_COMMAND} dry-run: ${parsed.error ?? `unexpected argument ${parsed.positionals[0]}`}`);
      }
      if (parsed.booleans.get('help') === true) {
        writeStdout(USAGE);
        return;
      }
      const bundle = resolve(cwd, parsed.values.get('bundle') ?? '');
      const id = parsed.values.get('id') ?? basename(bundle);
      const { config: settings, path } = config();
      const { containerdSocket } = require('./declared-gids') as typeof import('./declared-gids');
      const fromEnv = containerdSocket(env);
      const criSocket = parsed.values.get('cri-socket') ?? ('path' in fromEnv ? fromEnv.path : CONTAINERD_DEFAULT_SOCKET);
      const { decision } = await prepareCreate({ bundle, id, env, dryRun: true, criSocket }, settings);
      const { changed: _changed, decisionRecord: _record, ...shown } = decision;
      writeStdout(JSON.stringify({ bundle, id, config: path, ...shown }, null, 2) + '\n');
      return;
    }
    case 'report': {
      const { runReport } = require('./report/report') as typeof import('./report/report');
      const { resolveRuntime } = require('./handoff') as typeof import('./handoff');
      runReport(rest, () => resolveRuntime(config().config.runtime, env));
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
