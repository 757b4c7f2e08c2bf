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
