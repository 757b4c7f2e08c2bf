/**
 * Pod start latency under containerd 1.6, through the CRI as the kubelet
 * starts a pod: wall time from RunPodSandbox to the return of
 * StartContainer, for the seed pod (Strict annotation) under the
 * `strict-groups` handler and under plain `runc`, same image and spec. A pod
 * start runs the runtime four times (create and start of the sandbox, then
 * of the container), each through the shim under `strict-groups`: this is
 * the shim's cost as a pod sees it.
 *
 * Pods alternate between the handlers so that drift hits both alike; each is
 * removed before the next starts; medians are reported. BENCH_PODS sets the
 * number of pods per handler (default 15). Needs what the containerd suite
 * needs.
 *
 *   node_modules/node/bin/node --import=@tapjs/typescript/import test/bench/pod-start.ts
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ContainerdNode, HANDLER, prerequisites, type PodSpec } from '../helpers/containerd';
import { POLICY, ROOT } from '../helpers/oci';

/** The Node the shim is built from; its bare start is the shim's floor per call. */
const NODE = join(ROOT, 'node_modules', 'node', 'bin', 'node');
/** Runtime calls in one pod start: create and start, of the sandbox and of the container. */
const CALLS_PER_POD = 4;

const HANDLERS = ['runc', HANDLER] as const;
/** Unmeasured rounds first: page cache, the shim binary's first load. */
const WARM_UP = 2;

function podCount(): number {
  const value = process.env['BENCH_PODS'] ?? '15';
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1) throw new Error(`BENCH_PODS must be a positive integer, not ${value}`);
  return count;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function timedNodeStart(): number {
  const start = process.hrtime.bigint();
  execFileSync(NODE, ['-e', '0'], { stdio: 'ignore' });
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** Starts one pod, returns the milliseconds until StartContainer returned, then tears the pod down. */
async function timedStart(node: ContainerdNode, spec: PodSpec): Promise<number> {
  const start = process.hrtime.bigint();
  const pod = await node.runPod(spec);
  const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  await node.removePod(pod);
  return elapsed;
}

async function main(): Promise<void> {
  const ready = prerequisites('1.6');
  if (ready.skip !== false) throw new Error(`pod-start bench ${ready.skip}`);
  const pods = podCount();
  const node = await ContainerdNode.start({ build: ready.build });
  try {
    const samples: Record<(typeof HANDLERS)[number], number[]> = { runc: [], [HANDLER]: [] };
    const nodeStarts: number[] = [];
    for (let round = -WARM_UP; round < pods; round++) {
      for (const handler of HANDLERS) {
        const spec: PodSpec = {
          name: `bench-${handler}-${round + WARM_UP}`,
          runtimeHandler: handler,
          annotations: { [POLICY]: 'Strict' },
          runAsUser: 1000,
          supplementalGroups: [60000],
          command: ['sleep', '3600'],
        };
        const elapsed = await timedStart(node, spec);
        if (round >= 0) samples[handler].push(elapsed);
      }
      const bare = timedNodeStart();
      if (round >= 0) nodeStarts.push(bare);
    }

    const version = await node.cri.version();
    const runc = median(samples.runc);
    const shim = median(samples[HANDLER]);
    const bare = median(nodeStarts);
    const perCall = (shim - runc) / CALLS_PER_POD;
    const ms = (value: number): string => `${value.toFixed(1).padStart(7)} ms`;
    process.stdout.write(
      [
        `pod start (RunPodSandbox to StartContainer returned), ${version.runtime_name} ${version.runtime_version}, ` +
          `${pods} alternating pods per handler, medians (${process.arch}, ${execFileSync('nproc', { encoding: 'utf8' }).trim()} CPUs)`,
        `  runc           ${ms(runc)}`,
        `  strict-groups  ${ms(shim)}`,
        `  extra          ${ms(shim - runc)}   strict-groups/runc ${(shim / runc).toFixed(2)}x`,
        `  bare Node start${ms(bare)}   (node -e 0, same run)`,
        `  extra per runtime call ${ms(perCall).trim()} (${CALLS_PER_POD} calls a pod) = ${(perCall / bare).toFixed(2)}x a bare Node start`,
      ].join('\n') + '\n',
    );
  } finally {
    await node.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
