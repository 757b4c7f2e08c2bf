import { ShimError } from './errors';
import type { Validator } from './generated/validators.cjs';

/**
 * Runs a precompiled validator; on failure throws a ShimError naming the
 * document and the first offending field, e.g.
 * "/run/.../config.json: /process/user/uid must be integer".
 */
export function assertValid<T>(validate: Validator, data: unknown, what: string): asserts data is T {
  if (validate(data)) return;
  const first = validate.errors?.[0];
  const where = first?.instancePath === '' || first === undefined ? '(top level)' : first.instancePath;
  const extra = first?.params?.['additionalProperty'];
  const detail = typeof extra === 'string' ? `unknown key ${JSON.stringify(extra)}` : (first?.message ?? 'is invalid');
  throw new ShimError(`${what}: ${where} ${detail}`);
}
