/**
 * src/annotations.ts: the audit trail's "who" must come from the keys the CRI
 * runtime itself sets. CRI-O copies every pod annotation into config.json, so
 * a pod could write containerd's keys there and pose as another pod.
 */
import t from 'tap';
import { isSandbox, podIdentity } from '../../src/annotations';

t.test('containerd keys under containerd', async (t) => {
  t.same(
    podIdentity({
      'io.kubernetes.cri.sandbox-namespace': 'team-a',
      'io.kubernetes.cri.sandbox-name': 'web-0',
      'io.kubernetes.cri.container-name': 'app',
      'io.kubernetes.cri.container-type': 'container',
      // A CRI-O key a pod cannot set under containerd is simply absent.
    }),
    { namespace: 'team-a', pod: 'web-0', container: 'app', containerType: 'container' },
  );
});

t.test('under CRI-O only CRI-O keys count, even when containerd keys were forged', async (t) => {
  t.same(
    podIdentity({
      'io.kubernetes.cri-o.ContainerType': 'container',
      'io.kubernetes.pod.namespace': 'team-b',
      'io.kubernetes.pod.name': 'job-1',
      'io.kubernetes.container.name': 'worker',
      'io.kubernetes.cri.sandbox-namespace': 'kube-system',
      'io.kubernetes.cri.sandbox-name': 'coredns',
    }),
    { namespace: 'team-b', pod: 'job-1', container: 'worker', containerType: 'container' },
  );
});

t.test('no CRI annotations: no identity', async (t) => {
  t.same(podIdentity({ 'strict-groups.io/supplemental-groups-policy': 'Strict' }), {});
});

t.test('isSandbox reads the container type from the CRI runtime in charge', async (t) => {
  t.equal(isSandbox({ 'io.kubernetes.cri.container-type': 'sandbox' }), true, 'containerd sandbox');
  t.equal(isSandbox({ 'io.kubernetes.cri.container-type': 'container' }), false, 'containerd container');
  t.equal(isSandbox({ 'io.kubernetes.cri-o.ContainerType': 'sandbox' }), true, 'CRI-O sandbox');
  t.equal(
    isSandbox({ 'io.kubernetes.cri-o.ContainerType': 'container', 'io.kubernetes.cri.container-type': 'sandbox' }),
    false,
    'under CRI-O a forged containerd key does not make a sandbox',
  );
  t.equal(isSandbox({}), false, 'no CRI annotations: a plain bundle');
});
