import { realpathSync } from 'node:fs';
import { REMOVED_GIDS_ANNOTATION, isSandbox } from './annotations';
import { annotationsOf, loadBundleConfig, rootfsPath, saveDocument, withAdditionalGids, withRemovalRecord, type BundleConfig } from './bundle';
import type { NodeConfig } from './config';
import { criLookupUids, imageGidsFor } from './etc-files';
import { declaredGids, type DeclaredGids } from './declared-gids';
import {
  choosePolicy,
  formatGidList,
  keepGids,
  mergeVerdicts,
  parseGidList,
  strictByDeclared,
  strictByImage,
  type GidVerdict,
  type PolicyChoice,
  type PolicySettings,
  type StrictOutcome,
} from './policy';
import { readRootfsFile } from './rootfs';

/**
 * Which rule decided a Strict create: the pod's declaration as the CRI
 * runtime reports it (what native Strict keeps), or, where that cannot be
 * had, the gids the image grants (the safe fallback); none under Merge.
 */
export type StrictRule = 'declared' | 'image' | 'none';

/** What a create decides, for the rewrite, the audit trail and the dry run. */
export interface CreateDecision {
  policy: PolicyChoice['policy'];
  policySource: PolicyChoice['source'];
  uid: number;
  gid: number;
  rule: StrictRule;
  /** Where the rule's input came from, or why the declared rule could not be used. */
  ruleReason: string;
  /** The gids the CRI runtime says the pod declared (declared rule only). */
  declaredGids?: number[];
  /** The gids the image's /etc/group grants the user (image rule only; sorted). */
  imageGids?: number[];
  additionalGids: { before: number[]; after: number[] };
  removed: number[];
  /** Every gid of `before`, once, with why it stayed or went. */
  gids: GidVerdict[];
  /** The removal record to write; undefined drops one a pod may have set. */
  record: string | undefined;
  /** Whether config.json must be rewritten. */
  changed: boolean;
}

/** Whether a create under these settings could use the pod's declaration: Strict, that is. */
export function wantsDeclaredGids(config: BundleConfig, settings: PolicySettings): boolean {
  const annotations = annotationsOf(config);
  return choosePolicy(annotations, settings, { sandbox: isSandbox(annotations) }).policy === 'Strict';
}

/**
 * The decision for a bundle's config, given what the CRI runtime said the
 * pod declared. `imageGidsOf` reads the image and is only called when the
 * image rule decides. Pure otherwise.
 */
export function decideCreate(
  config: BundleConfig,
  settings: Pick<NodeConfig, 'defaultPolicy' | 'allowPolicyOverride' | 'honorKeepGids'>,
  declared: DeclaredGids,
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
      rule: 'none',
      ruleReason: 'Merge keeps every gid',
      additionalGids: { before, after: before },
      removed: [],
      gids: mergeVerdicts(before).verdicts,
      record: undefined,
      changed: existingRecord !== undefined,
    };
  }

  const keep = keepGids(annotations, settings.honorKeepGids, { sandbox });
  // The CRI runtime merged every declared gid into the config; an answer
  // naming one the config lacks does not describe this bundle.
  const missing = declared.known ? declared.gids.filter((declaredGid) => !before.includes(declaredGid)) : [];
  let outcome: StrictOutcome;
  let rule: Pick<CreateDecision, 'rule' | 'ruleReason' | 'declaredGids' | 'imageGids'>;
  if (declared.known && missing.length === 0) {
    outcome = strictByDeclared(before, gid, new Set(declared.gids), keep);
    rule = { rule: 'declared', ruleReason: declared.source, declaredGids: declared.gids };
  } else {
    const imageGids = imageGidsOf(uid);
    outcome = strictByImage(before, gid, imageGids, keep);
    const why = declared.known
      ? `${declared.source} declares gids config.json does not hold (${formatGidList(missing)})`
      : declared.why;
    rule = { rule: 'image', ruleReason: why, imageGids: [...imageGids].sort((a, b) => a - b) };
  }
  // A second create over an already rewritten config (runc run twice in one
  // bundle) removes nothing more; the first removal must stay on record for
  // exec. A record the pod set can only widen what exec strips.
  const previous = existingRecord === undefined ? [] : (parseGidList(existingRecord) ?? []);
  const record = formatGidList(new Set([...previous, ...outcome.removed]));
  return {
    ...base,
    ...rule,
    additionalGids: { before, after: outcome.additionalGids },
    removed: outcome.removed,
    gids: outcome.verdicts,
    record,
    changed: outcome.removed.length > 0 || existingRecord !== record,
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

export interface CreateRequest {
  bundle: string;
  /** The container id the runtime was given: the one the CRI runtime is asked about. */
  id: string;
  /** The runtime's environment, where containerd names its socket. */
  env: NodeJS.ProcessEnv;
  dryRun?: boolean;
  /** The dry run's --cri-socket: ask there instead of where the environment says. */
  criSocket?: string | undefined;
}

/** Decides for the bundle and, unless `dryRun`, rewrites its config.json. */
export async function prepareCreate(
  request: CreateRequest,
  settings: Pick<NodeConfig, 'defaultPolicy' | 'allowPolicyOverride' | 'honorKeepGids'>,
): Promise<{ decision: CreateDecision; config: BundleConfig }> {
  const { bundle } = request;
  const loaded = loadBundleConfig(bundle);
  const config = loaded.document;
  const annotations = annotationsOf(config);
  // Only a Strict create asks; Merge needs no one's word.
  const declared: DeclaredGids = wantsDeclaredGids(config, settings)
    ? await declaredGids(annotations, request.id, request.env, { socket: request.criSocket })
    : { known: false, why: 'Merge keeps every gid' };
  // runc chdirs into the bundle: a relative root.path is relative to where
  // the bundle really is, not to a symlink on the way to it.
  const decision = decideCreate(config, settings, declared, imageGidsReader(rootfsPath(physicalPath(bundle), config)));
  if (decision.changed && request.dryRun !== true) {
    const process = withAdditionalGids(config.process, decision.additionalGids.after);
    saveDocument(loaded, withRemovalRecord({ ...config, process }, decision.record));
  }
  return { decision, config };
}
