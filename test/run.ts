/**
 * npm test: every suite through tap, then one plain closing line
 * ("tests: N passed, N failed, N skipped"). In CI (CI set) a skipped test
 * fails the run: the runtime suites must run there, never silently not.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './helpers/oci';

const inCI = !['', '0', 'false'].includes(process.env['CI'] ?? '');
const tap = spawn(join(ROOT, 'node_modules', '.bin', 'tap'), ['--reporter', 'tap', ...process.argv.slice(2)], {
  cwd: ROOT,
  stdio: ['ignore', 'pipe', 'inherit'],
});

let summary: Record<string, number> | undefined;
let pending = '';
tap.stdout.on('data', (chunk: Buffer) => {
  process.stdout.write(chunk);
  pending += chunk.toString('utf8');
  const lines = pending.split('\n');
  pending = lines.pop() ?? '';
  for (const line of lines) {
    // tap closes with "# { total: 12, pass: 11, fail: 1, skip: 0 }".
    const match = /^# \{ (total: \d+.*) \}$/.exec(line);
    if (match) summary = Object.fromEntries(match[1]!.split(', ').map((part) => part.split(': ')).map(([k, v]) => [k!, Number(v)]));
  }
});

tap.on('exit', (code, signal) => {
  const passed = summary?.['pass'] ?? 0;
  const failed = summary?.['fail'] ?? 0;
  const skipped = (summary?.['skip'] ?? 0) + (summary?.['todo'] ?? 0);
  process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  if (summary === undefined) process.stderr.write('test/run: tap printed no summary\n');
  if (inCI && skipped > 0) process.stderr.write(`test/run: ${skipped} tests skipped in CI, where every suite must run\n`);
  process.exitCode = code !== 0 || signal !== null || summary === undefined || (inCI && skipped > 0) ? 1 : 0;
});
