import { DECISION_ANNOTATION, REMOVED_GIDS_ANNOTATION, criContainer, podIdentity, type Annotations, type PodIdentity } from '../annotations';
import { parseGidList, POLICIES, type Policy } from '../policy';

/**
 * What `strict-groups report` says of one container, from what its runtime
 * and the shim wrote: the runtime's list entry, and the bundle's config.json
 * (the CRI runtime's annotations, the shim's records, the process user).
 * Pure.
 */

export interface ListedContainer {
  id: string;
  bundle: string;
  status?: string | undefined;
}

export interface BundleFacts {
  annotations: Annotations;
  user: { uid: number; gid: number; additionalGids?: number[] | undefined } | undefined;
}

export interface ContainerReport extends PodIdentity {
  id: string;
  status: string | undefined;
  /** Whether strict-groups-runtime created it (its records are in config.json). */
  managed: boolean;
  /** The CRI runtime that made it, by its annotations. */
  cri: 'containerd' | 'cri-o' | 'none';
  policy?: Policy;
  policySource?: string;
  rule?: string;
  ruleReason?: string;
  removed?: number[];
  wouldRemove?: number[];
  wouldRefuse?: string;
  uid?: number;
  gid?: number;
  /** What the container runs with: config.json's additionalGids, as the runtime was given them. */
  additionalGids?: number[];
  /** Why the bundle could not be read, if it could not. */
  problem?: string;
}

function gidListOrUndefined(value: unknown): number[] | undefined {
  return Array.isArray(value) && value.every((gid) => Number.isInteger(gid) && gid >= 0 && gid <= 0xffffffff) ? (value as number[]) : undefined;
}

/** The shim's decision record, as far as it reads as one; a record it cannot have written is reported as such. */
function decisionOf(annotations: Annotations): Partial<ContainerReport> | undefined {
  const text = annotations[DECISION_ANNOTATION];
  if (text === undefined) {
    // Written by a shim from before the decision record: Strict, rule unknown.
    const removed = annotations[REMOVED_GIDS_ANNOTATION];
    if (removed === undefined) return undefined;
    const gids = parseGidList(removed);
    return { policy: 'Strict', rule: 'unknown', ...(gids === undefined ? { problem: 'unreadable removal record' } : { removed: gids }) };
  }
  let record: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    record = parsed as Record<string, unknown>;
  } catch {
    return { problem: 'unreadable decision record' };
  }
  const policy = POLICIES.find((candidate) => candidate === record['policy']);
  if (policy === undefined) return { problem: 'unreadable decision record' };
  const report: Partial<ContainerReport> = { policy };
  for (const key of ['policySource', 'rule', 'ruleReason', 'wouldRefuse'] as const) {
    if (typeof record[key] === 'string') report[key] = record[key] as string;
  }
  const removed = gidListOrUndefined(record['removed']);
  const wouldRemove = gidListOrUndefined(record['wouldRemove']);
  if (removed !== undefined) report.removed = removed;
  if (wouldRemove !== undefined) report.wouldRemove = wouldRemove;
  return report;
}

export function classify(listed: ListedContainer, bundle: BundleFacts | { problem: string }): ContainerReport {
  const base: ContainerReport = { id: listed.id, status: listed.status, managed: false, cri: 'none' };
  if ('problem' in bundle) return { ...base, problem: bundle.problem };
  const { annotations, user } = bundle;
  const report: ContainerReport = { ...base, ...podIdentity(annotations), cri: criContainer(annotations).runtime };
  if (user !== undefined) {
    report.uid = user.uid;
    report.gid = user.gid;
    report.additionalGids = user.additionalGids ?? [];
  }
  const decision = decisionOf(annotations);
  if (decision === undefined) return report;
  return { ...report, managed: true, ...decision };
}

/** Counts for the metrics: how many containers each way. */
export interface ReportTotals {
  /** By policy, then rule; unmanaged containers as policy "unmanaged", rule "none". */
  byPolicyAndRule: Map<string, Map<string, number>>;
  /** Containers whose image gids Strict removes, and those Audit says Strict would. */
  removing: { Strict: number; Audit: number };
  /** containerd pod containers (not sandboxes) decided by the image rule: the CRI's answer could not be had. */
  fallbacks: number;
  /** Audit containers that Strict would refuse to start. */
  wouldRefuse: number;
}

export function totals(containers: readonly ContainerReport[]): ReportTotals {
  const result: ReportTotals = { byPolicyAndRule: new Map(), removing: { Strict: 0, Audit: 0 }, fallbacks: 0, wouldRefuse: 0 };
  for (const container of containers) {
    const [policy, rule] = container.managed ? [container.policy ?? 'unknown', container.rule ?? 'unknown'] : ['unmanaged', 'none'];
    const byRule = result.byPolicyAndRule.get(policy) ?? new Map<string, number>();
    byRule.set(rule, (byRule.get(rule) ?? 0) + 1);
    result.byPolicyAndRule.set(policy, byRule);
    if (container.policy === 'Strict' && (container.removed?.length ?? 0) > 0) result.removing.Strict++;
    if (container.policy === 'Audit' && (container.wouldRemove?.length ?? 0) > 0) result.removing.Audit++;
    if (container.managed && container.cri === 'containerd' && container.containerType === 'container' && container.rule === 'image') result.fallbacks++;
    if (container.wouldRefuse !== undefined) result.wouldRefuse++;
  }
  return result;
}
