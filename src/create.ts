import { realpathSync } from 'node:fs';
import { REMOVED_GIDS_ANNOTATION, isSandbox } from './annotations';
import { annotationsOf, loadBundleConfig, rootfsPath, saveDocument, withAdditionalGids, withRemovalRecord, type BundleConfig } from './bundle';
import type { NodeConfig } from './config';
import { criLookupUids, imageGidsFor } from './etc-files';
import { choosePolicy, formatGidList, keepGids, parseGidList, stripGids, type PolicyChoice } from './policy';
import { readRootfsFile } from './rootfs';

/** What a create decides, for the rewrite, the audit trail and the dry run. */
export interface CreateDecision {
  policy: PolicyChoice['policy'];
  policySource: PolicyChoice['source'];
  uid: number;
  gid: number;
  /** Gids the image's /etc/group grants the user (Strict only; sorted). */
  imageGids: number[];
  additionalGids: { before: number[]; after: number[] };
  removed: number[];
  /** Image-derived gids that stay: the primary gid and honoured keep-gids. */
  kept: number[];
  /** The removal record to write; undefined drops one a pod may have set. */
  record: string | undefined;
  /** Whether config.json must be rewritten. */
  changed: boolean;
}

/**
 * The decision for a bundle's config. `imageGidsOf` reads the image and is
 * only called under Strict. Pure otherwise.
 */
export function decideCreate(
  config: BundleConfig,
  settings: Pick<NodeConfig, 'defaultPolicy' | 'allowPolicyOverride' | 'honorKeepGids'>,
  imageGidsOf: (uid: number) => Set<number>,
): CreateDecision {
  const annotations = annotationsOf(config);
  const sandbox = isSandbox(annotations);
  const choice = choosePolicy(annotations, settings, { sandbox });
  const { uid, gid } = config.process.user;
  const before = config.process.user.additionalGids ?? [];
  const existingRecord = annotations[REMOVED_GIDS_ANNOTATION];
  const base = { policy: choice.policy, policySource: choice.source, uid, gid };

  if (choice.policy === 'Merge') {
    // Nothing changes; a removal record can only have come from the pod.
    return {
      ...base,
      imageGids: [],
      additionalGids: { before, after: before },
      removed: [],
      kept: [],
      record: undefined,
      changed: existingRecord !== undefined,
    };
  }

  const keep = keepGids(annotations, settings.honorKeepGids, { sandbox });
  const unwanted = imageGidsOf(uid);
  const strip = stripGids(before, unwanted, gid, keep);
  // A second create over an already rewritten config (runc run twice in one
  // bundle) removes nothing more; the first removal must stay on record for
  // exec. A record the pod set can only widen what exec strips.
  const previous = existingRecord === undefined ? [] : (parseGidList(existingRecord) ?? []);
  const record = formatGidList(new Set([...previous, ...strip.removed]));
  return {
    ...base,
    imageGids: [...unwanted].sort((a, b) => a - b),
    additionalGids: { before, after: strip.additionalGids },
    removed: strip.removed,
    kept: strip.kept,
    record,
    changed: strip.removed.length > 0 || existingRecord !== record,
  };
}

/** The image-derived gids for a process uid, read from the bundle's rootfs. */
function imageGidsReader(rootfs: string): (uid: number) => Set<number> {
  return (uid) => {
    const passwd = readRootfsFile(rootfs, '/etc/passwd');
    // No passwd entry, no name, no image groups: /etc/group is not needed.
    if (passwd === null) return new Set();
    return imageGidsFor(criLookupUids(uid), passwd, readRootfsFile(rootfs, '/etc/group'));
  };
}

function physicalPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** Decides for the bundle and, unless `dryRun`, rewrites its config.json. */
export function prepareCreate(
  bundle: string,
  settings: Pick<NodeConfig, 'defaultPolicy' | 'allowPolicyOverride' | 'honorKeepGids'>,
  options: { dryRun?: boolean } = {},
): { decision: CreateDecision; config: BundleConfig } {
  const loaded = loadBundleConfig(bundle);
  const config = loaded.document;
  // runc chdirs into the bundle: a relative root.path is relative to where
  // the bundle really is, not to a symlink on the way to it.
  const decision = decideCreate(config, settings, imageGidsReader(rootfsPath(physicalPath(bundle), config)));
  if (decision.changed && options.dryRun !== true) {
    const process = withAdditionalGids(config.process, decision.additionalGids.after);
    saveDocument(loaded, withRemovalRecord({ ...config, process }, decision.record));
  }
  return { decision, config };
}
