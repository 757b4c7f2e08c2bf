import { resolve } from 'node:path';
import { parseInvocation, type Invocation } from './argv';
import { loadConfig, loadConfigLeniently } from './config';
import { ShimError, describe } from './errors';
import { inheritedFds, handOff, resolveRuntime } from './handoff';
import { logFormatFrom, report, type LogTarget } from './log';
import { nonUtf8Argument, nonUtf8Variable } from './raw-input';

/**
 * strict-groups-runtime: runc's command line in, runc's command line out.
 * create/run/restore rewrite the bundle's config.json and exec --process the
 * process file, so that the image's own /etc/group grants no groups the pod
 * spec did not; every call then becomes the real runtime through execve.
 * Everything else goes straight through. What the acting paths need is loaded
 * only on those paths.
 */

async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  // Until the command line is read, a failure can only go to stderr.
  let logTarget: LogTarget = { format: 'text' };
  try {
    // Before anything is read from it: the runtime would act on other names
    // than the caller gave, the --log file among them.
    const altered = nonUtf8Argument(argv);
    if (altered !== undefined) {
      throw new ShimError(`refusing to run: argument ${altered} is not valid UTF-8, and Node would pass it on altered`);
    }
    const invocation = parseInvocation(argv);
    logTarget = { path: invocation.globals.log, format: logFormatFrom(invocation.globals.logFormat) };
    await run(invocation, argv, env, logTarget);
  } catch (err) {
    const message = err instanceof ShimError ? describe(err) : `internal error: ${describe(err)}`;
    report(logTarget, 'error', `strict-groups: ${message}`);
    process.exitCode = 1;
  }
}

async function run(invocation: Invocation, argv: readonly string[], env: NodeJS.ProcessEnv, logTarget: LogTarget): Promise<void> {
  if (invocation.kind === 'shim') {
    const { runShimCommand } = require('./shim-commands') as typeof import('./shim-commands');
    await runShimCommand(invocation.args, () => loadConfig(env), process.cwd());
    return;
  }
  if (invocation.kind === 'unclear') {
    throw new ShimError(`refusing to run: ${invocation.reason}`);
  }

  const command = invocation.kind === 'exec' ? 'exec' : invocation.command;
  const acting = invocation.kind === 'create' || (invocation.kind === 'exec' && invocation.processFile !== undefined);
  // An altered environment, like a broken configuration, fails creates and
  // execs closed; every other call goes on, so that pods can still stop.
  const variable = nonUtf8Variable(env);
  const altered = variable === undefined ? undefined : `environment variable ${variable} is not valid UTF-8, and Node would pass it on altered`;
  if (altered !== undefined && acting) throw new ShimError(`refusing to run: ${altered}`);
  const { config, path: configPath, problem } = acting ? { ...loadConfig(env), problem: undefined } : loadConfigLeniently(env);
  for (const why of [altered, problem]) {
    if (why !== undefined) report(logTarget, 'warning', `strict-groups: ${why}; passing ${command ?? 'the call'} on to runtime ${JSON.stringify(config.runtime)}`);
  }
  const runtime = resolveRuntime(config.runtime, env);

  if (invocation.kind === 'create') {
    const { prepareCreate } = require('./create') as typeof import('./create');
    const bundle = resolve(invocation.bundle);
    const { decision, config: spec } = prepareCreate(bundle, config);
    if (decision.policySource === 'invalid-annotation-on-sandbox') {
      report(logTarget, 'warning', `strict-groups: sandbox ${invocation.id}: invalid policy annotation, node default ${decision.policy} applied; the pod's containers will fail to create`);
    }
    if (config.auditLog !== null) {
      const { appendAudit, auditLine } = require('./audit') as typeof import('./audit');
      try {
        appendAudit(config.auditLog, auditLine(new Date(), invocation.command, invocation.id, bundle, spec.annotations ?? {}, decision));
      } catch (err) {
        // The decision is applied and recorded in config.json; a lost audit
        // line must not stop the container. Say so where operators look.
        report(logTarget, 'warning', `strict-groups: cannot append to the audit log ${config.auditLog} (set in ${configPath}): ${describe(err)}`);
      }
    }
  } else if (invocation.kind === 'exec' && invocation.processFile !== undefined) {
    const { prepareExec, queryState, removalFor } = require('./exec') as typeof import('./exec');
    const removal = removalFor(queryState(runtime, invocation.globals.forState, invocation.id));
    if (removal !== undefined && removal.length > 0) prepareExec(resolve(invocation.processFile), removal);
  }

  const fds = inheritedFds(command, invocation.fds, env);
  await handOff({ runtime, args: argv, ...fds });
}

// The SEA puts the binary's path in argv[0] and the name it was called by in argv[1].
void main(process.argv.slice(2), process.env);
