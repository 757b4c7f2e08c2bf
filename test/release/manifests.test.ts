/**
 * deploy/daemonset.yaml, deploy/cleanup.yaml and runtimeclass.yaml against
 * the Kubernetes API schema (test/helpers/manifests.ts), and what they must
 * say for the rollout to be what the README promises: every node, whatever
 * its taints, privileged with the host's / where the entrypoint looks for
 * it, no API credentials, and a RuntimeClass that schedules onto the label
 * the installer's feature file gives a node. The release's copies, with the
 * image pinned by digest, are checked the same way in release.test.ts.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { featureFile, nodeLabels } from '../../src/install/advertise';
import { parseManifest, schemaErrors, typeErrors, type Manifest } from '../helpers/manifests';
import { ROOT } from '../helpers/oci';

const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const FILES = ['deploy/daemonset.yaml', 'deploy/cleanup.yaml', 'runtimeclass.yaml'];
const manifests = Object.fromEntries(FILES.map((file) => [file, parseManifest(readFileSync(join(ROOT, file), 'utf8'), file)])) as Record<string, Manifest>;

/** A deep copy with one change, for the checks that must fail. */
function edited(manifest: Manifest, change: (copy: any) => void): Manifest {
  const copy = structuredClone(manifest);
  change(copy);
  return copy;
}

t.test('every manifest is valid against the API schema, with no unknown field', async (t) => {
  const typed = typeErrors(FILES.map((where) => ({ where, manifest: manifests[where]! })));
  for (const [i, where] of FILES.entries()) {
    t.same(await schemaErrors(manifests[where]!, where), [], `${where}: schema`);
    t.same(typed[i], [], `${where}: no unknown field, every type right`);
  }
});

t.test('the checks can fail: each catches its own kind of mistake', async (t) => {
  const ds = manifests['deploy/daemonset.yaml']!;
  const rc = manifests['runtimeclass.yaml']!;
  const cases: { what: string; where: string; manifest: Manifest; schema: boolean; types: RegExp }[] = [
    { what: 'a misspelt field', where: 'daemonset', manifest: edited(ds, (m) => (m.spec.template.spec.containers[0].securityContext = { privilegd: true })), schema: false, types: /'"privilegd"' does not exist in type 'ISecurityContext'/ },
    { what: 'a misspelt top-level field', where: 'runtimeclass', manifest: edited(rc, (m) => (m.schedulng = m.scheduling)), schema: false, types: /'"schedulng"' does not exist in type 'IRuntimeClass'/ },
    { what: 'a wrong type', where: 'daemonset', manifest: edited(ds, (m) => (m.spec.template.spec.containers[0].securityContext.privileged = 'yes')), schema: true, types: /Type 'string' is not assignable to type 'boolean/ },
    { what: 'a missing required field', where: 'daemonset', manifest: edited(ds, (m) => delete m.spec.selector), schema: true, types: /selector/ },
    { what: 'a label value that is not a string', where: 'runtimeclass', manifest: edited(rc, (m) => (m.scheduling.nodeSelector.x = 1)), schema: true, types: /Type 'number' is not assignable to type 'string'/ },
  ];
  const typed = typeErrors(cases.map(({ where, manifest }) => ({ where, manifest })));
  for (const [i, c] of cases.entries()) {
    const schema = await schemaErrors(c.manifest, c.where);
    if (c.schema) t.not(schema.length, 0, `${c.what}: the schema check fails (${schema[0]})`);
    else t.same(schema, [], `${c.what}: the schema check lets it through (why the type check is there)`);
    t.match(typed[i]!.join('\n'), c.types, `${c.what}: the type check fails`);
  }
});

for (const [file, mode] of [['deploy/daemonset.yaml', 'install'], ['deploy/cleanup.yaml', 'uninstall']] as const) {
  t.test(`${file}: a privileged pod on every node, the host's / where the entrypoint looks, no credentials`, async (t) => {
    const ds = manifests[file] as any;
    t.equal(ds.metadata.namespace, 'kube-system', 'kube-system: where system-node-critical is always allowed');
    t.equal(ds.metadata.labels['app.kubernetes.io/version'], version, "labelled with package.json's version");
    t.same(ds.spec.selector.matchLabels, { 'app.kubernetes.io/name': ds.metadata.name });
    const pod = ds.spec.template.spec;
    t.match(ds.spec.template.metadata.labels, ds.spec.selector.matchLabels, 'the selector selects the template');
    t.equal(pod.priorityClassName, 'system-node-critical');
    t.same(pod.tolerations, [{ operator: 'Exists' }], 'tolerates every taint');
    t.equal(pod.automountServiceAccountToken, false, 'no API credentials in the pod');
    t.notOk(pod.hostPID, 'no host PID namespace: the host is reached through its root and systemd');
    t.equal(pod.containers.length, 1);
    const [container] = pod.containers;
    t.equal(container.image, `registry.invalid/strict-groups:${version}`, 'a registry name that never resolves, tagged with the version');
    t.same(container.command, ['/strict-groups/entrypoint']);
    t.same(container.args, [mode]);
    t.equal(container.securityContext.privileged, true);
    const hostRoot = (container.env as { name: string; value: string }[]).find((e) => e.name === 'STRICT_GROUPS_HOST_ROOT')?.value;
    const volume = (pod.volumes as any[]).find((v) => v.hostPath?.path === '/');
    t.ok(volume, "the host's / is a hostPath volume");
    t.equal(volume.hostPath.type, 'Directory');
    const mount = (container.volumeMounts as any[]).find((m) => m.name === volume.name);
    t.equal(mount.mountPath, hostRoot, 'mounted where STRICT_GROUPS_HOST_ROOT says');
    t.notOk(mount.readOnly, 'writable: the installer writes the host');
  });
}

t.test('runtimeclass.yaml schedules onto exactly the labels the feature file gives a node', async (t) => {
  const rc = manifests['runtimeclass.yaml'] as any;
  t.equal(rc.handler, 'strict-groups');
  t.equal(rc.metadata.name, 'strict-groups');
  const labels = nodeLabels(rc.handler, version);
  const selector = rc.scheduling.nodeSelector as Record<string, string>;
  t.not(Object.keys(selector).length, 0);
  for (const [name, value] of Object.entries(selector)) t.equal(labels[name], value, `${name}=${value} is a label the installed node has`);
  t.notOk('feature.node.kubernetes.io/strict-groups.version' in selector, 'not the version: a rollout must not unschedule pods');
  t.match(featureFile(rc.handler, version), `${Object.keys(selector)[0]}=${rc.handler}\n`);
});
