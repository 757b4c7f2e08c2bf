/** Annotation keys the shim reads and writes. */

/** Pod annotation choosing the policy: exactly "Strict" or "Merge". */
export const POLICY_ANNOTATION = 'strict-groups.io/supplemental-groups-policy';

/** Pod annotation listing gids to keep under Strict (only with honorKeepGids). */
export const KEEP_GIDS_ANNOTATION = 'strict-groups.io/keep-gids';

/**
 * Written by the shim into the bundle's config.json under Strict: the gids it
 * removed, comma-separated. Exec reads it back through the runtime's state.
 */
export const REMOVED_GIDS_ANNOTATION = 'strict-groups.io/removed-gids';

/** Who a container belongs to, as containerd and CRI-O annotate it. */
export const IDENTITY_KEYS = {
  namespace: ['io.kubernetes.cri.sandbox-namespace', 'io.kubernetes.pod.namespace'],
  pod: ['io.kubernetes.cri.sandbox-name', 'io.kubernetes.pod.name'],
  container: ['io.kubernetes.cri.container-name', 'io.kubernetes.container.name'],
  containerType: ['io.kubernetes.cri.container-type', 'io.kubernetes.cri-o.ContainerType'],
} as const;

export type Annotations = Readonly<Record<string, string>>;

export interface PodIdentity {
  namespace?: string;
  pod?: string;
  container?: string;
  containerType?: string;
}

/** The pod identity the CRI runtime recorded, for the audit trail. */
export function podIdentity(annotations: Annotations): PodIdentity {
  const identity: PodIdentity = {};
  for (const field of Object.keys(IDENTITY_KEYS) as (keyof PodIdentity)[]) {
    for (const key of IDENTITY_KEYS[field]) {
      const value = annotations[key];
      if (value !== undefined) {
        identity[field] = value;
        break;
      }
    }
  }
  return identity;
}
