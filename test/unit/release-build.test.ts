/**
 * The release build's pure parts: image references put into the manifests
 * (nothing that could change the YAML around them), the manifests' one
 * image line, the ELF checks on what is packed, and the OCI layout's
 * structure and digests. The whole release: test/release/.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/oci';

const manifestsModule = import('../../src/build/manifests.mts');
const elfModule = import('../../src/build/elf.mts');
const layoutModule = import('../../src/build/oci-image.mts');
const DIGEST = `sha256:${'a'.repeat(64)}`;

t.test('image references: a registry and a lowercase path, a tag, a digest; nothing else reaches the YAML', async (t) => {
  const { imageReference } = await manifestsModule;
  t.equal(imageReference('registry.invalid/strict-groups', '0.1.0', DIGEST), `registry.invalid/strict-groups:0.1.0@${DIGEST}`);
  for (const ok of ['registry.example.com:5000/team/strict-groups', 'localhost/a__b', 'r.io/x-y.z']) t.doesNotThrow(() => imageReference(ok, '1', DIGEST), ok);
  for (const bad of ['strict-groups', 'r.io/Upper', 'r.io/x:tag', 'r.io/x\nimage: evil', 'r.io/x #c', 'r.io/x y', '', 'r.io/']) {
    t.throws(() => imageReference(bad, '1', DIGEST), /not an image repository/, JSON.stringify(bad));
  }
  t.throws(() => imageReference('r.io/x', '1', 'sha256:abc'), /not an image digest/);
});

t.test("the manifests' image line, and only it, is replaced", async (t) => {
  const { withImage, containerImages } = await manifestsModule;
  const source = readFileSync(join(ROOT, 'deploy', 'daemonset.yaml'), 'utf8');
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const image = `registry.example.com/sg:${version}@${DIGEST}`;
  const edited = withImage(source, version, image, 'daemonset.yaml');
  t.same(containerImages(edited, 'x'), [image]);
  t.same(edited.split('\n').filter((line, i) => line !== source.split('\n')[i]), [`          image: ${image}`]);
  t.throws(() => withImage(source, '9.9.9', image, 'daemonset.yaml'), /must be registry\.invalid\/strict-groups:9\.9\.9/, "a manifest not at package.json's version is refused");
});

t.test('ELF headers: architecture and linking', async (t) => {
  const { elfInfo, readFromBuffer } = await elfModule;
  t.same(elfInfo(readFromBuffer(readFileSync('/bin/busybox')), 'busybox'), { architecture: 'amd64', interpreter: undefined }, 'a static executable');
  t.same(elfInfo(readFromBuffer(readFileSync('/usr/sbin/runc')), 'runc'), { architecture: 'amd64', interpreter: '/lib64/ld-linux-x86-64.so.2' });
  t.throws(() => elfInfo(readFromBuffer(Buffer.from('#!/bin/sh\n'.padEnd(64))), 'script'), /not an ELF file/);
  const arm = Buffer.from(readFileSync('/bin/busybox'));
  arm.writeUInt16LE(183, 18);
  t.equal(elfInfo(readFromBuffer(arm), 'x').architecture, 'arm64');
  arm.writeUInt16LE(40, 18);
  t.throws(() => elfInfo(readFromBuffer(arm), 'arm32'), /ELF machine 40, neither x86-64 nor aarch64/);
});

t.test('the OCI layout: index.json, one multi-platform index, a manifest per platform, every digest its content', async (t) => {
  const { imageLayout, MEDIA_TYPES } = await layoutModule;
  const input = {
    version: '1.2.3',
    created: 1_700_000_000,
    annotations: { 'org.opencontainers.image.title': 't' },
    platforms: (['amd64', 'arm64'] as const).map((architecture) => ({
      architecture,
      files: [{ type: 'directory' as const, path: 'bin', mode: 0o755 }, { type: 'file' as const, path: 'bin/x', mode: 0o755, content: Buffer.from(architecture) }],
      entrypoint: ['/bin/x'],
      env: ['PATH=/bin'],
      labels: {},
    })),
  };
  const layout = imageLayout(input);
  t.same(imageLayout(input).entries, layout.entries, 'the same input, the same bytes');
  const files = new Map(layout.entries.flatMap((e) => (e.type === 'file' ? [[e.path, e.content] as const] : [])));
  t.same([...files.keys()].filter((p) => !p.startsWith('blobs/')), ['index.json', 'oci-layout']);
  for (const [path, content] of files) {
    if (path.startsWith('blobs/sha256/')) t.equal(createHash('sha256').update(content).digest('hex'), path.slice('blobs/sha256/'.length), `${path} is its digest`);
  }
  const blob = (digest: string): any => JSON.parse(files.get(`blobs/sha256/${digest.slice(7)}`)!.toString());
  const top = JSON.parse(files.get('index.json')!.toString());
  t.same(top.manifests.map((m: any) => [m.mediaType, m.digest, m.annotations]), [[MEDIA_TYPES.index, layout.indexDigest, { 'org.opencontainers.image.ref.name': '1.2.3' }]]);
  const index = blob(layout.indexDigest);
  t.same(index.manifests.map((m: any) => m.platform), [{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }]);
  t.match(index.annotations, { 'org.opencontainers.image.version': '1.2.3', 'org.opencontainers.image.created': '2023-11-14T22:13:20Z', 'org.opencontainers.image.title': 't' });
  for (const descriptor of index.manifests) {
    const manifest = blob(descriptor.digest);
    t.equal(manifest.layers[0].mediaType, MEDIA_TYPES.layer);
    const config = blob(manifest.config.digest);
    t.equal(config.architecture, descriptor.platform.architecture);
    t.same(config.config.Entrypoint, ['/bin/x']);
    t.equal(config.rootfs.diff_ids.length, 1);
  }
});
