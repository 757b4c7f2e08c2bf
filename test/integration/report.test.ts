/**
 * strict-groups report on real runc: containers created through the shim
 * under Strict, Merge and Audit, and one created by runc alone, listed from
 * the runtime's root and read back from their bundles; the Prometheus text
 * written atomically and read by a real node-exporter's textfile collector.
 */
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { POLICY, SHIM, direct, prerequisites, shim, skipOrFail, workspace, type Workspace } from '../helpers/oci';
import { NODE_EXPORTER } from '../helpers/runtimes';

const skip = prerequisites('runc') ?? skipOrFail('report suite', existsSync(NODE_EXPORTER) ? [] : [`${NODE_EXPORTER} (test/setup.sh)`]);

async function report(ws: Workspace, args: string[]) {
  return execa(SHIM, ['strict-groups', 'report', '--root', ws.stateRoot, ...args], { reject: false, env: { STRICT_GROUPS_CONFIG: ws.configFile, PATH: process.env['PATH'] } });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * node-exporter with only the textfile collector, scraped once. The port is
 * free when picked but may be taken before node-exporter binds it: then it
 * exits, and another port is tried. Its own metric names tell its answer from
 * another listener's.
 */
async function scrapeTextfiles(dir: string): Promise<string> {
  for (let tries = 0; tries < 5; tries++) {
    const port = await freePort();
    const exporter = spawn(NODE_EXPORTER, ['--collector.disable-defaults', '--collector.textfile', `--collector.textfile.directory=${dir}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
    try {
      for (let attempt = 0; attempt < 100 && exporter.exitCode === null; attempt++) {
        try {
          const response = await fetch(`http://127.0.0.1:${port}/metrics`);
          const text = await response.text();
          if (response.ok && text.includes('node_textfile_scrape_error')) return text;
        } catch {
          // not listening yet
        }
        await delay(100);
      }
      if (exporter.exitCode === null) throw new Error('node-exporter did not answer within 10 s');
    } finally {
      exporter.kill('SIGKILL');
    }
  }
  throw new Error('node-exporter could not listen on any of 5 free ports');
}

t.test('strict-groups report', { skip: skip ?? false }, async (t) => {
  const ws = workspace('runc');
  t.teardown(() => ws.cleanup());
  const root = ['--root', ws.stateRoot];
  const start = async (id: string, policy: string | undefined, via: 'shim' | 'runc') => {
    const bundle = ws.bundle(id, { args: ['sleep', '60'], annotations: policy === undefined ? {} : { [POLICY]: policy } });
    const result = via === 'shim'
      ? await shim(ws, 'runc', [...root, 'run', '--detach', '--bundle', bundle, id], { output: 'ignore' })
      : await direct('runc', [...root, 'run', '--detach', '--bundle', bundle, id], { output: 'ignore' });
    if (result.exitCode !== 0) throw new Error(`${id}: ${result.stderr}`);
  };
  await start('strict', 'Strict', 'shim');
  await start('merge', 'Merge', 'shim');
  await start('audit', 'Audit', 'shim');
  await start('plain', undefined, 'runc');

  t.test('json: each container as the shim recorded it, or not', async (t) => {
    const result = await report(ws, ['--format', 'json']);
    t.equal(result.exitCode, 0, String(result.stderr));
    const parsed = JSON.parse(String(result.stdout));
    t.equal(parsed.roots.length, 1);
    const byId = Object.fromEntries(parsed.roots[0].containers.map((c: { id: string }) => [c.id, c]));
    t.same(Object.keys(byId).sort(), ['audit', 'merge', 'plain', 'strict']);
    t.match(byId.strict, { managed: true, policy: 'Strict', policySource: 'annotation', rule: 'image', removed: [50000], additionalGids: [1000, 60000], status: 'running' });
    t.match(byId.merge, { managed: true, policy: 'Merge', rule: 'none', additionalGids: [1000, 50000, 60000] });
    t.match(byId.audit, { managed: true, policy: 'Audit', rule: 'image', wouldRemove: [50000], additionalGids: [1000, 50000, 60000] });
    t.same(byId.plain, { id: 'plain', status: 'running', managed: false, cri: 'none', uid: 1000, gid: 1000, additionalGids: [1000, 50000, 60000] });
  });

  t.test('table: a line each', async (t) => {
    const result = await report(ws, []);
    t.equal(result.exitCode, 0, String(result.stderr));
    const lines = String(result.stdout).trimEnd().split('\n');
    t.equal(lines.length, 5);
    t.match(lines.find((line) => line.endsWith(' plain')), /not through strict-groups/);
    t.match(lines.find((line) => line.endsWith(' audit')), /Audit +annotation +image +- +50000 +1000,50000,60000/);
  });

  t.test('prometheus: written to a file node-exporter\'s textfile collector reads', async (t) => {
    const dir = join(ws.dir, 'textfile');
    mkdirSync(dir);
    const file = join(dir, 'strict_groups.prom');
    const result = await report(ws, ['--format', 'prometheus', '--output', file]);
    t.equal(result.exitCode, 0, String(result.stderr));
    t.equal(String(result.stdout), '', 'nothing on stdout');
    t.equal(statSync(file).mode & 0o777, 0o644);
    const metrics = await scrapeTextfiles(dir);
    t.match(metrics, /^node_textfile_scrape_error 0$/m, 'the collector parsed it');
    for (const line of [
      'strict_groups_containers{policy="Audit",rule="image"} 1',
      'strict_groups_containers{policy="Merge",rule="none"} 1',
      'strict_groups_containers{policy="Strict",rule="image"} 1',
      'strict_groups_containers{policy="unmanaged",rule="none"} 1',
      'strict_groups_containers_removing_gids{policy="Audit"} 1',
      'strict_groups_containers_removing_gids{policy="Strict"} 1',
      'strict_groups_image_rule_fallbacks 0',
      `strict_groups_report_root_up{root="${ws.stateRoot}"} 1`,
    ]) {
      t.ok(metrics.split('\n').includes(line), line);
    }
    t.same(readFileSync(file, 'utf8').split('\n').filter((line) => line.startsWith('strict_groups_containers{')).length, 4);
  });

  t.test('a root that cannot be listed is reported, not fatal; bad flags are', async (t) => {
    // A regular file where the root should be: runc cannot list it.
    const notARoot = join(ws.dir, 'not-a-root');
    writeFileSync(notARoot, '');
    const result = await report(ws, ['--root', notARoot, '--format', 'json']);
    t.equal(result.exitCode, 0, String(result.stderr));
    const parsed = JSON.parse(String(result.stdout));
    t.equal(parsed.roots.length, 2, 'both roots reported');
    t.equal(parsed.roots[0].containers.length, 4, 'the good one in full');
    t.same(parsed.roots[1].containers, []);
    t.equal(parsed.roots[1].error, `${notARoot} is not a directory`, 'the other with why');
    // runc lists a root that does not exist as empty; the report does not take it for an idle one.
    const missing = JSON.parse(String((await report(ws, ['--root', join(ws.dir, 'no-such-root'), '--format', 'json'])).stdout));
    t.equal(missing.roots[1].error, `${join(ws.dir, 'no-such-root')} is not a directory`, 'a root that does not exist is an error');
    const twice = JSON.parse(String((await report(ws, ['--root', ws.stateRoot, '--format', 'json'])).stdout));
    t.equal(twice.roots.length, 1, 'a root named twice is listed once');
    const bad = await report(ws, ['--format', 'yaml']);
    t.equal(bad.exitCode, 1);
    t.match(String(bad.stderr), /report: --format "yaml": want table, json or prometheus/);
  });
});
