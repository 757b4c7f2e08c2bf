/**
 * The README's record of hostile inputs and faults. Each suite keeps its cases
 * in a table (test/<suite>/*-cases.ts) whose rows carry both the procedure and
 * the words the README shows for it, so the README says exactly what the
 * tests try and assert: `npm run record` writes the section from the tables,
 * and test/record.test.ts fails when the README differs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RecordRow {
  /** The class of input or fault, e.g. "symlinks", "file types", "disk". */
  area: string;
  /** What was tried, in a few words. */
  tried: string;
  /** What the suite asserts happens, in a few words. */
  outcome: string;
}

export const README = join(__dirname, '..', '..', 'README.md');
const BEGIN = '<!-- record: written by `npm run record` from the suites\' case tables; test/record.test.ts keeps it so -->';
const END = '<!-- end of record -->';

/** A markdown table cell: pipes escaped, as GitHub's tables need. */
function cell(text: string): string {
  return text.replaceAll('|', '\\|');
}

function table(rows: readonly { record: RecordRow }[]): string {
  const lines = ['| area | tried | outcome |', '|---|---|---|'];
  for (const { record } of rows) lines.push(`| ${cell(record.area)} | ${cell(record.tried)} | ${cell(record.outcome)} |`);
  return lines.join('\n');
}

/** The generated section, markers included. Loaded lazily: the tables build large test data. */
export function renderRecord(): string {
  const { IMAGE_CASES } = require('../hostile/image-cases') as typeof import('../hostile/image-cases');
  const { LOG_CASES } = require('../hostile/log-cases') as typeof import('../hostile/log-cases');
  const { FAULT_CASES } = require('../faults/fault-cases') as typeof import('../faults/fault-cases');
  const { CRI_CASES, PRE_SHIM_CASE } = require('../hostile/cri-cases') as typeof import('../hostile/cri-cases');
  return [
    BEGIN,
    '',
    '**Images** (`test/hostile/images.test.ts`). Each case is the seed pod',
    '(`runAsUser: 1000`, `supplementalGroups: [4242, 60000]`) on an image built',
    'to confuse the reader, run by real runc through the shim, with a',
    'config.json holding what a CRI runtime would have merged from that image.',
    'Every case that runs shows exactly the pod\'s groups, `1000 4242 60000`,',
    'and its audit line lists exactly the gids the image grants as the CRI',
    'runtimes read it (so a gid wrongly counted shows too); every refusal',
    'names the file and why, leaves config.json untouched and',
    'creates no container. Files outside the rootfs, where a reader that',
    'escaped would land, grant the pod\'s own gid 4242, so an escape would show',
    'in the groups. And under strace, which shows every file the shim opens',
    'before it becomes runc: every lookup in the image resolves inside the',
    'rootfs, no rootfs path is opened directly (as a read that follows links on',
    'the host would), and neither the decoys nor the host files the links point',
    'at (`/etc/passwd`, `/etc/group`, `/dev/null`, `/sys/kernel/notes`) are',
    'opened. A case still running after 60 s would fail.',
    '',
    table(IMAGE_CASES),
    '',
    '**Log lines** (`test/hostile/logs.test.ts`). Each value is set as the',
    'policy annotation (an error) and as the pod, namespace and container names',
    'containerd records (the audit trail).',
    '',
    table(LOG_CASES),
    '',
    '**Faults** (`test/faults/faults.test.ts`). Each case is the seed pod',
    '(alice in the image\'s group 50000, additionalGids `[1000, 50000, 60000]`),',
    'through the shim in front of real runc; the kills are strace\'s SIGKILL',
    'before a chosen system call, each checked against its own trace.',
    '',
    table(FAULT_CASES),
    '',
    '**The CRI runtime\'s answer** (`test/hostile/cri.test.ts`). Where the',
    'shim asks containerd\'s CRI what the pod declared, each case puts something',
    'else there, or nothing. The container is alice (1000) on an image that',
    'lists her in 50000 and 50001, in a pod that declared `[50000, 60000]`, with',
    'config.json holding what containerd merged, `[1000, 50000, 50001, 60000]`;',
    'it is created, started and exec\'d through the shim in front of real runc,',
    'and its groups read from the kernel (`/proc/<pid>/status`). Only two',
    'outcomes pass: native Strict\'s `1000 50000 60000`, or the image rule\'s',
    '`1000 60000`; 50001, which only the image grants, never stays. A case',
    'still running after 60 s would fail.',
    '',
    table([...CRI_CASES, PRE_SHIM_CASE]),
    '',
    END,
  ].join('\n');
}

/** The README's record section as it stands, markers included. */
export function recordInReadme(readme: string): string | undefined {
  const begin = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  return begin === -1 || end < begin ? undefined : readme.slice(begin, end + END.length);
}

if (require.main === module) {
  const readme = readFileSync(README, 'utf8');
  const current = recordInReadme(readme);
  if (current === undefined) throw new Error(`${README} has no record section between ${BEGIN} and ${END}`);
  // A function, so that no "$" in a case's words is read as a replacement pattern.
  writeFileSync(README, readme.replace(current, () => renderRecord()));
}
