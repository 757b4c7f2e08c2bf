import { ShimError } from './errors';
import { readRegularFile } from './files';
import { validateNodeConfig } from './generated/validators.cjs';
import type { Policy } from './policy';
import { assertValid } from './validate';

/** The node's configuration; schemas/config.schema.json documents each key. */
export interface NodeConfig {
  runtime: string;
  defaultPolicy: Policy;
  allowPolicyOverride: boolean;
  honorKeepGids: boolean;
  auditLog: string | null;
}

export const DEFAULT_CONFIG_PATH = '/etc/strict-groups/config.json';
export const CONFIG_PATH_ENV = 'STRICT_GROUPS_CONFIG';
const MAX_CONFIG_BYTES = 1024 * 1024;

/** Kept equal to the schema's "default" values by a unit test. */
export const DEFAULTS: Readonly<NodeConfig> = Object.freeze({
  runtime: 'runc',
  defaultPolicy: 'Strict',
  allowPolicyOverride: true,
  honorKeepGids: false,
  auditLog: '/var/log/strict-groups/audit.log',
});

export function configPath(env: NodeJS.ProcessEnv): string {
  const fromEnv = env[CONFIG_PATH_ENV];
  return fromEnv === undefined || fromEnv === '' ? DEFAULT_CONFIG_PATH : fromEnv;
}

/** Validates a parsed configuration document and fills in the defaults. */
export function resolveConfig(document: unknown, path: string): NodeConfig {
  assertValid<Partial<NodeConfig>>(validateNodeConfig, document, path);
  const config = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof NodeConfig)[]) {
    if (document[key] !== undefined) (config as Record<string, unknown>)[key] = document[key];
  }
  return config;
}

/** Loads the node's configuration; a missing file means every default. */
export function loadConfig(env: NodeJS.ProcessEnv): { config: NodeConfig; path: string } {
  const path = configPath(env);
  const content = readRegularFile(path, MAX_CONFIG_BYTES, { missingOk: true });
  if (content === null) return { config: { ...DEFAULTS }, path };
  let document: unknown;
  try {
    document = JSON.parse(content.content.toString('utf8'));
  } catch (err) {
    throw new ShimError(`${path}: not valid JSON: ${(err as Error).message}`);
  }
  return { config: resolveConfig(document, path), path };
}

/**
 * For commands that change nothing (state, kill, delete, ...): a broken
 * configuration must not leave pods stuck terminating. The runtime is taken
 * from the file if it names one, else the default; the error is returned for
 * the caller to log.
 */
export function loadConfigLeniently(env: NodeJS.ProcessEnv): { config: NodeConfig; path: string; problem?: string } {
  try {
    return loadConfig(env);
  } catch (err) {
    const path = configPath(env);
    let runtime = DEFAULTS.runtime;
    try {
      const salvaged = (JSON.parse(readRegularFile(path, MAX_CONFIG_BYTES).content.toString('utf8')) as { runtime?: unknown }).runtime;
      if (typeof salvaged === 'string' && salvaged !== '') runtime = salvaged;
    } catch {
      // Not even that: the default runtime.
    }
    return { config: { ...DEFAULTS, runtime }, path, problem: (err as Error).message };
  }
}
