import { KEEP_GIDS_ANNOTATION, POLICY_ANNOTATION, REMOVED_GIDS_ANNOTATION, type Annotations } from './annotations';
import { ShimError, quoted } from './errors';

export type Policy = 'Strict' | 'Merge';

export interface PolicySettings {
  defaultPolicy: Policy;
  allowPolicyOverride: boolean;
}

export interface PolicyChoice {
  policy: Policy;
  /**
   * Where it came from: the pod's annotation, the node default for want of
   * one, the node default enforced over an annotation it overrides, or the
   * node default in place of an invalid annotation on a sandbox container.
   */
  source: 'annotation' | 'node-default' | 'node-enforced' | 'invalid-annotation-on-sandbox';
}

/**
 * The policy for a container, from its annotations and the node's settings.
 * An invalid annotation fails the create, except on the pod's sandbox: the
 * CRI runtime copies pod annotations there too, and failing RunPodSandbox
 * would hide the error from the container it is about. The sandbox gets the
 * node default instead, which is never weaker than having no annotation, and
 * every container of the pod then fails with the message.
 */
export function choosePolicy(annotations: Annotations, settings: PolicySettings, options: { sandbox?: boolean } = {}): PolicyChoice {
  const requested = annotations[POLICY_ANNOTATION];
  if (requested === undefined) return { policy: settings.defaultPolicy, source: 'node-default' };
  if (!settings.allowPolicyOverride) return { policy: settings.defaultPolicy, source: 'node-enforced' };
  if (requested !== 'Strict' && requested !== 'Merge') {
    if (options.sandbox === true) return { policy: settings.defaultPolicy, source: 'invalid-annotation-on-sandbox' };
    throw new ShimError(
      `invalid pod annotation ${POLICY_ANNOTATION}=${quoted(requested)}: want "Strict" or "Merge"`,
    );
  }
  return { policy: requested, source: 'annotation' };
}

const MAX_GID = 0xffffffff;

/**
 * A comma-separated list of decimal gids, as in the keep-gids and removed-gids
 * annotations; an empty string is the empty list. Returns undefined when the
 * text is not such a list.
 */
export function parseGidList(text: string): number[] | undefined {
  if (text.trim() === '') return [];
  const gids: number[] = [];
  for (const item of text.split(',')) {
    const digits = item.trim();
    if (!/^[0-9]{1,10}$/.test(digits)) return undefined;
    const gid = Number(digits);
    if (gid > MAX_GID) return undefined;
    gids.push(gid);
  }
  return gids;
}

export function formatGidList(gids: Iterable<number>): string {
  return [...gids].join(',');
}

/**
 * The gids the pod asks to keep under Strict; ignored unless the node honours
 * it. An invalid list fails the create but, as in choosePolicy, keeps nothing
 * on a sandbox.
 */
export function keepGids(annotations: Annotations, honorKeepGids: boolean, options: { sandbox?: boolean } = {}): Set<number> {
  const text = annotations[KEEP_GIDS_ANNOTATION];
  if (!honorKeepGids || text === undefined) return new Set();
  const gids = parseGidList(text);
  if (gids === undefined) {
    if (options.sandbox === true) return new Set();
    throw new ShimError(
      `invalid pod annotation ${KEEP_GIDS_ANNOTATION}=${quoted(text)}: want comma-separated decimal gids`,
    );
  }
  return new Set(gids);
}

/**
 * The removal a Strict create recorded, or undefined when there is none (the
 * create chose Merge). A record the shim cannot have written is an error.
 */
export function recordedRemoval(annotations: Annotations): number[] | undefined {
  const text = annotations[REMOVED_GIDS_ANNOTATION];
  if (text === undefined) return undefined;
  // Exactly what formatGidList writes: no spaces, no leading zeros.
  const gids = /^((0|[1-9][0-9]{0,9})(,(0|[1-9][0-9]{0,9}))*)?$/.test(text) ? parseGidList(text) : undefined;
  if (gids === undefined) {
    throw new ShimError(`invalid annotation ${REMOVED_GIDS_ANNOTATION}=${quoted(text)} in the container's state`);
  }
  return gids;
}

export interface StripResult {
  /** The new additionalGids: the old ones, in order, less `removed`. */
  additionalGids: number[];
  /** What went, in the order it stood. */
  removed: number[];
  /** Gids that were up for removal but stay: the primary gid and keep-gids. */
  kept: number[];
}

/**
 * Removes `unwanted` gids from a process's supplementary groups, except its
 * primary gid and the gids in `keep`. Never adds, never reorders.
 */
export function stripGids(
  additionalGids: readonly number[],
  unwanted: ReadonlySet<number>,
  primaryGid: number,
  keep: ReadonlySet<number>,
): StripResult {
  const result: StripResult = { additionalGids: [], removed: [], kept: [] };
  for (const gid of additionalGids) {
    if (!unwanted.has(gid)) {
      result.additionalGids.push(gid);
    } else if (gid === primaryGid || keep.has(gid)) {
      result.additionalGids.push(gid);
      if (!result.kept.includes(gid)) result.kept.push(gid);
    } else if (!result.removed.includes(gid)) {
      result.removed.push(gid);
    }
  }
  return result;
}
