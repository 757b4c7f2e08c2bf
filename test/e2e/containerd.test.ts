/**
 * End to end under containerd 1.6: the node wired by install.sh, pods started
 * through real CRI gRPC calls as the kubelet makes them, the groups read from
 * inside the containers. The seed case of FACTS.md under both policies, the
 * node default, exec, an invalid annotation, and the plain runc handler next
 * to it.
 */
import t from 'tap';
import { ContainerdNode, HANDLER, prerequisites, type PodSpec } from '../helpers/containerd';
import { MERGED_GROUPS, POLICY, STRICT_GROUPS } from '../helpers/oci';

/** Prints its identity to the CRI log, then stays up for exec. */
const ID_THEN_SLEEP = ['sh', '-c', 'id; exec sleep 3600'];

/** The seed pod: runAsUser 1000, supplementalGroups [60000], on the seed image. */
function seedPod(name: string, runtimeHandler: string, annotations: Record<string, string> = {}): PodSpec {
  return { name, runtimeHandler, annotations, runAsUser: 1000, supplementalGroups: [60000], command: ID_THEN_SLEEP };
}

const skip = prerequisites();
t.test('containerd CRI', { skip: skip ?? false }, async (t) => {
  const node = await ContainerdNode.start();
  t.teardown(() => node.stop());
  const version = await node.cri.version();
  t.comment(`${version.runtime_name} ${version.runtime_version}, CRI ${version.runtime_api_version}`);

  t.test('Strict annotation: the image gid is gone', async (t) => {
    const pod = await node.runPod(seedPod('strict', HANDLER, { [POLICY]: 'Strict' }));
    t.equal(await node.firstOutputLine(pod), STRICT_GROUPS, 'id in the container');

    const audit = node.auditEntries('strict');
    t.same(
      audit.map((entry) => [entry.containerType, entry.policy, entry.policySource]),
      [['sandbox', 'Strict', 'annotation'], ['container', 'Strict', 'annotation']],
      'one audit line for the sandbox, one for the container',
    );
    const container = audit.find((entry) => entry.containerType === 'container');
    t.comment(JSON.stringify(container));
    t.same(
      [container?.container, container?.uid, container?.rule, container?.declaredGids, container?.removed, container?.additionalGids],
      ['main', 1000, 'declared', [60000], [50000], [1000, 60000]],
      'the container\'s audit line: containerd\'s CRI said what the pod declared',
    );
    await node.removePod(pod);
  });

  t.test('Merge annotation: the image gid stays', async (t) => {
    const pod = await node.runPod(seedPod('merge', HANDLER, { [POLICY]: 'Merge' }));
    t.equal(await node.firstOutputLine(pod), MERGED_GROUPS, 'id in the container');
    const container = node.auditEntries('merge').find((entry) => entry.containerType === 'container');
    t.same([container?.policy, container?.removed], ['Merge', []], 'audit line');
    await node.removePod(pod);
  });

  t.test('no annotation: the node default, Strict', async (t) => {
    const pod = await node.runPod(seedPod('default', HANDLER));
    t.equal(await node.firstOutputLine(pod), STRICT_GROUPS, 'id in the container');
    const container = node.auditEntries('default').find((entry) => entry.containerType === 'container');
    t.same([container?.policy, container?.policySource], ['Strict', 'node-default'], 'audit line');
    await node.removePod(pod);
  });

  t.test('ExecSync into a Strict container: the exec process loses the gid too', async (t) => {
    const pod = await node.runPod(seedPod('exec', HANDLER, { [POLICY]: 'Strict' }));
    t.equal(await node.firstOutputLine(pod), STRICT_GROUPS, 'the container');
    t.equal((await node.exec(pod, ['id'])).trim(), STRICT_GROUPS, 'the exec process');
    await node.removePod(pod);
  });

  t.test('invalid annotation: the sandbox runs, the container fails naming the annotation', async (t) => {
    const sandbox = await node.runSandbox(seedPod('invalid', HANDLER, { [POLICY]: 'strict' }));
    // containerd 1.6 runs the runtime at StartContainer, not CreateContainer.
    // The message is the shim's --log line, decoded by containerd: what
    // the kubelet reports in the pod's events.
    const started = node.createContainer(sandbox).then((id) => node.cri.startContainer(id));
    await t.rejects(started, {
      message: `OCI runtime create failed: strict-groups: invalid pod annotation ${POLICY}="strict": want "Strict" or "Merge"`,
    });
    t.same(
      node.auditEntries('invalid').map((entry) => [entry.containerType, entry.policy, entry.policySource]),
      [['sandbox', 'Strict', 'invalid-annotation-on-sandbox']],
      'the sandbox ran under the node default; no container was created',
    );
    await node.removePod(sandbox);
  });

  t.test('runc handler: unaffected, with or without the annotation', async (t) => {
    const plain = await node.runPod(seedPod('runc', 'runc'));
    t.equal(await node.firstOutputLine(plain), MERGED_GROUPS, 'no annotation');
    const annotated = await node.runPod(seedPod('runc-strict', 'runc', { [POLICY]: 'Strict' }));
    t.equal(await node.firstOutputLine(annotated), MERGED_GROUPS, 'annotation Strict means nothing to runc');
    t.same([...node.auditEntries('runc'), ...node.auditEntries('runc-strict')], [], 'the shim never ran');
    await node.removePod(plain);
    await node.removePod(annotated);
  });
});
