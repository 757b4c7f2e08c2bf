/**
 * An error meant for the operator. Its message is what containerd shows after
 * "OCI runtime create failed:" and what conmon relays from stderr, so it must
 * say what went wrong and where, without a stack trace.
 */
export class ShimError extends Error {
  override name = 'ShimError';
}

/** The errno code of a failed system call, if it was one. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A short human text for any thrown value. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The longest value a message quotes whole. */
const MAX_QUOTED = 256;

/**
 * A value from a pod or an image, for a message: JSON-quoted, so that none of
 * its characters can end or forge a log line, and cut when long (a pod's
 * annotations may hold 256 KiB), with its length said.
 */
export function quoted(value: string): string {
  if (value.length <= MAX_QUOTED) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, MAX_QUOTED))}... (${value.length} characters)`;
}
