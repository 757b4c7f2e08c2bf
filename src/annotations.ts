/** Annotation keys the shim reads and writes. */

/** Pod annotation choosing the policy: exactly "Strict", "Merge" or "Audit". */
export const POLICY_ANNOTATION = 'strict-groups.io/supplemental-groups-policy';

/** Pod annotation listing gids to keep under Strict (only with honorKeepGids). */
export const KEEP_GIDS_ANNOTATION = 'strict-groups.io/keep-gids';

/**
 * Written by the shim into the bundle's config.json under Strict: the gids it
 * removed, comma-separated. Exec reads it back through the runtime's state.
 */
export const REMOVED_GIDS_ANNOTATION = 'strict-groups.io/removed-gids';

/**
 * Written by the shim into config.json on every create: its decision as JSON
 * (policy, where it came from, the rule, what went or would go), for
 * `strict-groups report`. Exec never reads it: under Audit it names gids
 * that must stay.
 */
export const DECISION_ANNOTATION = 'strict-groups.io/decision';

/**
 * Who a container belongs to, as containerd and CRI-O annotate it. CRI-O
 * copies every pod annotation into config.json, so a pod could set
 * containerd's keys there: under CRI-O (its ContainerType key present) only
 * CRI-O's keys are read, under containerd only containerd's. containerd copies
 * no pod annotation but strict-groups.io/* ones.
 */
const CRIO_IDENTITY = {
  namespace: 'io.kubernetes.pod.namespace',
  pod: 'io.kubernetes.pod.name',
  container: 'io.kubernetes.container.name',
  containerType: 'io.kubernetes.cri-o.ContainerType',
} as const;
const CONTAINERD_IDENTITY = {
  namespace: 'io.kubernetes.cri.sandbox-namespace',
  pod: 'io.kubernetes.cri.sandbox-name',
  container: 'io.kubernetes.cri.container-name',
  containerType: 'io.kubernetes.cri.container-type',
} as const;
const CONTAINERD_SANDBOX_ID = 'io.kubernetes.cri.sandbox-id';

export type Annotations = Readonly<Record<string, string>>;

export interface PodIdentity {
  namespace?: string;
  pod?: string;
  container?: string;
  containerType?: string;
}

function identityKeys(annotations: Annotations): typeof CRIO_IDENTITY | typeof CONTAINERD_IDENTITY {
  return annotations[CRIO_IDENTITY.containerType] !== undefined ? CRIO_IDENTITY : CONTAINERD_IDENTITY;
}

/** The pod identity the CRI runtime recorded, for the audit trail. */
export function podIdentity(annotations: Annotations): PodIdentity {
  const keys = identityKeys(annotations);
  const identity: PodIdentity = {};
  for (const field of Object.keys(keys) as (keyof PodIdentity)[]) {
    const value = annotations[keys[field]];
    if (value !== undefined) identity[field] = value;
  }
  return identity;
}

/**
 * Whether the CRI runtime says this is the pod's sandbox (pause) container.
 * Only a hint: under CRI-O a pod could claim it for a workload container, so
 * it may relax nothing that matters for the groups.
 */
export function isSandbox(annotations: Annotations): boolean {
  return annotations[identityKeys(annotations).containerType] === 'sandbox';
}

/**
 * Which CRI runtime made the bundle, by the keys it annotates every
 * container with; "none" for a plain bundle (runc run, ctr, podman). CRI-O's
 * key wins, as in podIdentity: under CRI-O a pod can set containerd's.
 */
export type CriContainer =
  | { runtime: 'cri-o' }
  | { runtime: 'containerd'; containerType: string; name: string | undefined; sandboxId: string | undefined }
  | { runtime: 'none' };

export function criContainer(annotations: Annotations): CriContainer {
  if (annotations[CRIO_IDENTITY.containerType] !== undefined) return { runtime: 'cri-o' };
  const containerType = annotations[CONTAINERD_IDENTITY.containerType];
  if (containerType === undefined) return { runtime: 'none' };
  return {
    runtime: 'containerd',
    containerType,
    name: annotations[CONTAINERD_IDENTITY.container],
    sandboxId: annotations[CONTAINERD_SANDBOX_ID],
  };
}
