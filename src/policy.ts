import { KEEP_GIDS_ANNOTATION, POLICY_ANNOTATION, REMOVED_GIDS_ANNOTATION, type Annotations } from './annotations';
import { ShimError, quoted } from './errors';

/**
 * Strict removes what native Strict would; Merge keeps everything; Audit
 * keeps everything too, while working out and recording what Strict would
 * remove, so that a node can be checked before it enforces.
 */
export type Policy = 'Strict' | 'Merge' | 'Audit';
export const POLICIES: readonly Policy[] = ['Strict', 'Merge', 'Audit'];

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
  const policy = POLICIES.find((candidate) => candidate === requested);
  if (policy === undefined) {
    if (options.sandbox === true) return { policy: settings.defaultPolicy, source: 'invalid-annotation-on-sandbox' };
    throw new ShimError(
      `invalid pod annotation ${POLICY_ANNOTATION}=${quoted(requested)}: want "Strict", "Merge" or "Audit"`,
    );
  }
  return { policy, source: 'annotation' };
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

/**
 * Why a gid stayed or went, gid by gid: the audit line and the dry run say
 * this for every gid of the config.
 *  - kept as the process's primary gid, which no rule removes;
 *  - kept as declared by the pod (the CRI runtime's answer);
 *  - kept as a keep-gid the node honours;
 *  - kept as not from the image (the image rule removes only what the image grants);
 *  - kept under Merge, which keeps everything;
 *  - removed as not declared (the CRI runtime's answer), or as from the image;
 *  - under Audit, kept but one Strict would remove, and why.
 */
export type RemovalReason = 'not-declared' | 'from-image';
export type GidVerdict =
  | { gid: number; kept: 'primary' | 'declared' | 'keep-gids' | 'not-from-image' | 'merge' }
  | { gid: number; removed: RemovalReason }
  | { gid: number; wouldRemove: RemovalReason };

export interface StrictOutcome {
  /** The new additionalGids: the old ones, in order, less `removed`. */
  additionalGids: number[];
  /** What went, in the order it stood, once each. */
  removed: number[];
  /** One verdict per distinct gid, in the order they stood. */
  verdicts: GidVerdict[];
}

/**
 * Strict, as containerd 2.x applies it natively: the primary gid and the
 * gids the pod declared stay, whatever the image says; everything else the
 * CRI runtime merged in goes. Keep-gids the node honours stay too.
 */
export function strictByDeclared(additionalGids: readonly number[], primaryGid: number, declared: ReadonlySet<number>, keep: ReadonlySet<number>): StrictOutcome {
  return applyVerdicts(additionalGids, (gid) =>
    gid === primaryGid ? { gid, kept: 'primary' }
    : declared.has(gid) ? { gid, kept: 'declared' }
    : keep.has(gid) ? { gid, kept: 'keep-gids' }
    : { gid, removed: 'not-declared' },
  );
}

/**
 * The fallback where the pod's declaration cannot be known: every gid the
 * image could have granted goes, unless it is the primary gid or an honoured
 * keep-gid. A gid the pod declared and the image also grants goes with them.
 */
export function strictByImage(additionalGids: readonly number[], primaryGid: number, imageGids: ReadonlySet<number>, keep: ReadonlySet<number>): StrictOutcome {
  return applyVerdicts(additionalGids, (gid) =>
    gid === primaryGid ? { gid, kept: 'primary' }
    : !imageGids.has(gid) ? { gid, kept: 'not-from-image' }
    : keep.has(gid) ? { gid, kept: 'keep-gids' }
    : { gid, removed: 'from-image' },
  );
}

/** Merge: every gid stays. */
export function mergeVerdicts(additionalGids: readonly number[]): StrictOutcome {
  return applyVerdicts(additionalGids, (gid) => ({ gid, kept: 'merge' }));
}

function applyVerdicts(additionalGids: readonly number[], judge: (gid: number) => GidVerdict): StrictOutcome {
  const outcome: StrictOutcome = { additionalGids: [], removed: [], verdicts: [] };
  const judged = new Map<number, GidVerdict>();
  for (const gid of additionalGids) {
    let verdict = judged.get(gid);
    if (verdict === undefined) {
      verdict = judge(gid);
      judged.set(gid, verdict);
      outcome.verdicts.push(verdict);
      if ('removed' in verdict) outcome.removed.push(gid);
    }
    // Never adds, never reorders: a kept gid stays where it stood, duplicates included.
    if ('kept' in verdict) outcome.additionalGids.push(gid);
  }
  return outcome;
}
