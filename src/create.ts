import { realpathSync } from 'node:fs';
import { DECISION_ANNOTATION, REMOVED_GIDS_ANNOTATION, isSandbox } from './annotations';
import { annotationsOf, loadBundleConfig, rootfsPath, saveDocument, withAdditionalGids, withRecords, type BundleConfig } from './bundle';
import type { NodeConfig } from './config';
import { declaredGids, type DeclaredGids } from './declared-gids';
import { ShimError } from './errors';
import { criLookupUids, imageGidsFor } from './etc-files';
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
 * Which rule decided what Strict removes (or, under Audit, would remove): the
 * pod's declaration as the CRI runtime reports it (what native Strict
 * keeps), or, where that cannot be had, the gids the image grants (the safe
 * fallback); none under Merge.
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
  /** Audit: what Strict would have removed. */
  wouldRemove?: number[];
  /** Audit: why Strict would have refused the container (an invalid keep-gids list, an image it cannot read safely). */
  wouldRefuse?: string;
  /** Every gid of `before`, once, with why it stayed, went, or would go. */
  gids: GidVerdict[];
  /** The removal record exec reads; undefined drops one a pod may have set. */
  record: string | undefined;
  /** The decision as recorded in config.json for `strict-groups report`. */
  decisionRecord: string;
  /** Whether config.json must be rewritten. */
  changed: boolean;
}

/** What the decision annotation holds (DECISION_ANNOTATION), as `strict-groups report` reads it back. */
export interface DecisionRecord {
  policy: PolicyChoice['policy'];
  policySource: PolicyChoice['source'];
  rule: StrictRule;
  ruleReason: string;
  removed?: number[];
  wouldRemove?: number[];
  wouldRefuse?: string;
}

/** A record that stays small whatever a reason quotes. */
const MAX_RECORDED_REASON = 512;

function decisionRecordOf(decision: Omit<CreateDecision, 'decisionRecord' | 'changed'>): string {
  const record: DecisionRecord = {
    policy: decision.policy,
    policySource: decision.policySource,
    rule: decision.rule,
    ruleReason: decision.ruleReason.length > MAX_RECORDED_REASON ? `${decision.ruleReason.slice(0, MAX_RECORDED_REASON)}...` : decision.ruleReason,
  };
  // What exec strips: a second create over a rewritten config removes nothing more.
  if (decision.policy === 'Strict') record.removed = parseGidList(decision.record ?? '') ?? [];
  if (decision.wouldRemove !== undefined) record.wouldRemove = decision.wouldRemove;
  if (decision.wouldRefuse !== undefined) record.wouldRefuse = decision.wouldRefuse;
  return JSON.stringify(record);
}

/** Whether a create under these settings could use the pod's declaration: Strict or Audit, that is. */
export function wantsDeclaredGids(config: BundleConfig, settings: PolicySettings): boolean {
  const annotations = annotationsOf(config);
  return choosePolicy(annotations, settings, { sandbox: isSandbox(annotations) }).policy !== 'Merge';
}

type Rule = { rule: 'declared'; ruleReason: string; declaredGids: number[] } | { rule: 'image'; ruleReason: string };
type RuleOutcome = { outcome: StrictOutcome } & Pick<CreateDecision, 'rule' | 'ruleReason' | 'declaredGids' | 'imageGids'>;

/** Which rule decides, and why: the pod's declaration when the CRI runtime's answer describes this bundle. */
function ruleFor(before: readonly number[], declared: DeclaredGids): Rule {
  if (!declared.known) return { rule: 'image', ruleReason: declared.why };
  // The CRI runtime merged every declared gid into the config; an answer
  // naming one the config lacks does not describe this bundle.
  const missing = declared.gids.filter((declaredGid) => !before.includes(declaredGid));
  if (missing.length > 0) return { rule: 'image', ruleReason: `${declared.source} declares gids config.json does not hold (${formatGidList(missing)})` };
  return { rule: 'declared', ruleReason: declared.source, declaredGids: declared.gids };
}

/**
 * What Strict removes, by the rule that decides. Reading the keep-gids
 * annotation and the image may throw (Strict then fails closed).
 */
function strictOutcome(
  rule: Rule,
  user: { uid: number; gid: number; before: number[] },
  keepOf: () => Set<number>,
  imageGidsOf: (uid: number) => Set<number>,
): RuleOutcome {
  const keep = keepOf();
  if (rule.rule === 'declared') return { ...rule, outcome: strictByDeclared(user.before, user.gid, new Set(rule.declaredGids), keep) };
  const imageGids = imageGidsOf(user.uid);
  return { ...rule, outcome: strictByImage(user.before, user.gid, imageGids, keep), imageGids: [...imageGids].sort((a, b) => a - b) };
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
  // Merge and Audit: every gid stays, and exec gets no removal record (a pod's is dropped).
  const unchanged = { additionalGids: { before, after: before }, removed: [], record: undefined };
  const finish = (decision: Omit<CreateDecision, 'decisionRecord' | 'changed'>): CreateDecision => {
    const decisionRecord = decisionRecordOf(decision);
    const changed = decision.removed.length > 0 || existingRecord !== decision.record || annotations[DECISION_ANNOTATION] !== decisionRecord;
    return { ...decision, decisionRecord, changed };
  };

  if (choice.policy === 'Merge') {
    return finish({
      ...base,
      rule: 'none',
      ruleReason: 'Merge keeps every gid',
      ...unchanged,
      gids: mergeVerdicts(before).verdicts,
    });
  }

  const rule = ruleFor(before, declared);
  const keepOf = (): Set<number> => keepGids(annotations, settings.honorKeepGids, { sandbox });
  const user = { uid, gid, before };
  if (choice.policy === 'Audit') {
    // Nothing changes and exec gets no record; what Strict would do is worked
    // out in full and recorded. Where Strict would fail closed (an invalid
    // keep-gids list, an image it cannot read safely), Audit says so and runs
    // the container.
    let strict: RuleOutcome;
    try {
      strict = strictOutcome(rule, user, keepOf, imageGidsOf);
    } catch (error) {
      if (!(error instanceof ShimError)) throw error;
      return finish({
        ...base,
        rule: rule.rule,
        ruleReason: rule.ruleReason,
        ...unchanged,
        wouldRemove: [],
        wouldRefuse: error.message,
        gids: mergeVerdicts(before).verdicts,
      });
    }
    const { outcome, ...decided } = strict;
    return finish({
      ...base,
      ...decided,
      ...unchanged,
      wouldRemove: outcome.removed,
      gids: outcome.verdicts.map((verdict) => ('removed' in verdict ? { gid: verdict.gid, wouldRemove: verdict.removed } : verdict)),
    });
  }

  const { outcome, ...decided } = strictOutcome(rule, user, keepOf, imageGidsOf);
  // A second create over an already rewritten config (runc run twice in one
  // bundle) removes nothing more; the first removal must stay on record for
  // exec. A record the pod set can only widen what exec strips.
  const previous = existingRecord === undefined ? [] : (parseGidList(existingRecord) ?? []);
  return finish({
    ...base,
    ...decided,
    additionalGids: { before, after: outcome.additionalGids },
    removed: outcome.removed,
    gids: outcome.verdicts,
    record: formatGidList(new Set([...previous, ...outcome.removed])),
  });
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
  // Only Strict and Audit ask; Merge needs no one's word.
  const declared: DeclaredGids = wantsDeclaredGids(config, settings)
    ? await declaredGids(annotations, request.id, request.env, { socket: request.criSocket })
    : { known: false, why: 'Merge keeps every gid' };
  // runc chdirs into the bundle: a relative root.path is relative to where
  // the bundle really is, not to a symlink on the way to it.
  const decision = decideCreate(config, settings, declared, imageGidsReader(rootfsPath(physicalPath(bundle), config)));
  if (decision.changed && request.dryRun !== true) {
    const process = withAdditionalGids(config.process, decision.additionalGids.after);
    saveDocument(loaded, withRecords({ ...config, process }, { removedGids: decision.record, decision: decision.decisionRecord }));
  }
  return { decision, config };
}
