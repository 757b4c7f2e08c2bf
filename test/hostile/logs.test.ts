/**
 * Log safety through the built shim (log-cases.ts), in front of every runc
 * and crun build (runtime-builds.ts): whatever a pod puts in an annotation, the --log file stays one JSON line per message that containerd
 * decodes, the text format and stderr stay one line, and the audit trail one
 * line per create, each giving the value back.
 */
import fse from 'fs-extra';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { quoted } from '../../src/errors';
import { POLICY, containerdError, shim, workspace, type Workspace } from '../helpers/oci';
import { runtimeBuilds } from '../helpers/runtime-builds';
import { LOG_CASES, type LogCase } from './log-cases';

const IDENTITY_KEYS = ['io.kubernetes.cri.sandbox-namespace', 'io.kubernetes.cri.sandbox-name', 'io.kubernetes.cri.container-name'];
const PLACEHOLDER = 'value-placeholder';

/** A bundle whose annotations hold the case's value, written as its bytes. */
function bundleWith(ws: Workspace, id: string, testCase: LogCase, annotations: Record<string, string>): string {
  const bundle = ws.bundle(id, { annotations, args: ['true'] });
  const config = join(bundle, 'config.json');
  const written = testCase.written ?? Buffer.from(JSON.stringify(testCase.value).slice(1, -1));
  const parts = readFileSync(config).toString('latin1').split(PLACEHOLDER);
  writeFileSync(config, Buffer.concat(parts.flatMap((part, i) => (i === 0 ? [Buffer.from(part, 'latin1')] : [written, Buffer.from(part, 'latin1')]))));
  return bundle;
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

for (const { label, build, skip } of runtimeBuilds('log safety suite')) t.test(`log lines under hostile annotation values: ${label}`, { skip }, async (t) => {
  const runtime = build!;
  const ws = workspace(runtime, { ownCgroups: true });
  t.teardown(() => ws.cleanup());
  const root = ['--root', ws.stateRoot];
  let auditLines = 0;

  for (const [index, testCase] of LOG_CASES.entries()) {
    await t.test(testCase.record.tried, async (t) => {
      const message = `strict-groups: invalid pod annotation ${POLICY}=${quoted(testCase.value)}: want "Strict", "Merge" or "Audit"`;
      const bundle = bundleWith(ws, `log-${index}`, testCase, { [POLICY]: PLACEHOLDER });
      t.equal(fse.readJsonSync(join(bundle, 'config.json')).annotations[POLICY], testCase.value, 'config.json holds the value');

      const json = join(ws.dir, `log-${index}.json`);
      const viaJson = await shim(ws, runtime, [...root, '--log', json, '--log-format', 'json', 'create', '--bundle', bundle, `log-${index}`]);
      t.equal(viaJson.exitCode, 1);
      t.equal(viaJson.stderr, '', 'stderr (the container\'s) untouched');
      t.equal(lines(readFileSync(json, 'utf8')).length, 1, 'one JSON line');
      t.equal(containerdError(json), message, 'containerd decodes the message, value intact');

      const text = join(ws.dir, `log-${index}.txt`);
      const viaText = await shim(ws, runtime, [...root, '--log', text, 'create', '--bundle', bundle, `log-${index}`]);
      t.equal(viaText.exitCode, 1);
      const [textLine, ...more] = lines(readFileSync(text, 'utf8'));
      t.same(more, [], 'one text line');
      const quotedMsg = /^time="[^"]+" level=error msg=("(?:[^"\\]|\\.)*")$/.exec(textLine ?? '');
      t.equal(quotedMsg === null ? undefined : JSON.parse(quotedMsg[1]!), message, 'the quoted msg reads back whole');

      const bare = await shim(ws, runtime, [...root, 'create', '--bundle', bundle, `log-${index}`]);
      t.equal(bare.exitCode, 1);
      t.equal(bare.stderr, message, 'without --log (conmon): the message alone on one line of stderr');

      // The audit trail records the pod's names, which a pod under CRI-O can set freely.
      const identity = Object.fromEntries(IDENTITY_KEYS.map((key) => [key, PLACEHOLDER]));
      const audited = bundleWith(ws, `audit-${index}`, testCase, { ...identity, 'io.kubernetes.cri.container-type': 'container' });
      const run = await shim(ws, runtime, [...root, 'run', '--bundle', audited, `audit-${index}`]);
      t.equal(run.exitCode, 0, run.stderr);
      const audit = lines(readFileSync(ws.auditLog, 'utf8'));
      t.equal(audit.length, ++auditLines, 'one audit line more');
      const entry = JSON.parse(audit[audit.length - 1]!) as Record<string, unknown>;
      t.same([entry['namespace'], entry['pod'], entry['container']], [testCase.value, testCase.value, testCase.value], 'names read back whole');
    });
  }
});
