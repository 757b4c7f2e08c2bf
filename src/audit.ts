import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { podIdentity, type Annotations } from './annotations';
import type { CreateDecision } from './create';
import { appendWhole } from './files';

/**
 * The audit trail: one JSON object per create decision, appended to the
 * configured file with O_APPEND, which keeps concurrent shims' lines apart.
 * Who (container id, pod, container) and what (policy, its source, the rule
 * that decided and its input, and every gid with why it stayed or went).
 */
export function auditLine(
  now: Date,
  action: string,
  id: string,
  bundle: string,
  annotations: Annotations,
  decision: CreateDecision,
): string {
  return (
    JSON.stringify({
      time: now.toISOString(),
      action,
      id,
      bundle,
      ...podIdentity(annotations),
      uid: decision.uid,
      gid: decision.gid,
      policy: decision.policy,
      policySource: decision.policySource,
      rule: decision.rule,
      ruleReason: decision.ruleReason,
      declaredGids: decision.declaredGids,
      imageGids: decision.imageGids,
      removed: decision.removed,
      wouldRemove: decision.wouldRemove,
      wouldRefuse: decision.wouldRefuse,
      gids: decision.gids,
      additionalGids: decision.additionalGids.after,
    }) + '\n'
  );
}

export function appendAudit(path: string, line: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'a', 0o640);
  } catch (err) {
    // The directory is made once, not looked for on every create.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
    fd = openSync(path, 'a', 0o640);
  }
  try {
    // Whole or not at all: a part would run into the next create's line.
    appendWhole(fd, Buffer.from(line, 'utf8'));
  } finally {
    closeSync(fd);
  }
}
