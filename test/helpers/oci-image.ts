/**
 * OCI image archives for the containerd suites, built locally (no registry is
 * reachable): one uncompressed layer holding busybox-static, a few applet
 * links and the image's own /etc/passwd and /etc/group (or links to them, or
 * neither), an image config, a
 * manifest and an index, tarred as an OCI image layout that
 * `ctr images import` loads under the image's full name.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'id', 'cat', 'sleep'];

export interface ImageOptions {
  /** Full reference, e.g. `localhost/strict-groups-e2e/seed:1`. */
  name: string;
  /** The image's /etc/passwd and /etc/group; left out of the layer when absent. */
  passwd?: string;
  group?: string;
  /** More files, by absolute path in the image, with their contents. */
  files?: Record<string, string>;
  /** Symbolic links, by absolute path in the image, with their targets as written. */
  links?: Record<string, string>;
  /** The config's User, as a Dockerfile's USER sets it. */
  user?: string;
  entrypoint?: string[];
  cmd: string[];
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** OCI's name for this machine's architecture; containerd's import keeps only the host's platform. */
function ociArchitecture(): string {
  const names: Record<string, string> = { x64: 'amd64', arm64: 'arm64' };
  const name = names[process.arch];
  if (name === undefined) throw new Error(`no OCI architecture name for ${process.arch}`);
  return name;
}

/** Writes `content` into the layout's blobs under its sha256 digest. */
function putBlob(layout: string, mediaType: string, content: Buffer): Descriptor {
  const hex = createHash('sha256').update(content).digest('hex');
  writeFileSync(join(layout, 'blobs', 'sha256', hex), content);
  return { mediaType, digest: `sha256:${hex}`, size: content.length };
}

function putJsonBlob(layout: string, mediaType: string, value: unknown): Descriptor {
  return putBlob(layout, mediaType, Buffer.from(JSON.stringify(value)));
}

/** The image's root filesystem as a directory tree. */
function stageRootfs(dir: string, options: ImageOptions): string {
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  mkdirSync(join(rootfs, 'etc'));
  copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  for (const applet of APPLETS) symlinkSync('busybox', join(rootfs, 'bin', applet));
  if (options.passwd !== undefined) writeFileSync(join(rootfs, 'etc', 'passwd'), options.passwd);
  if (options.group !== undefined) writeFileSync(join(rootfs, 'etc', 'group'), options.group);
  for (const [path, content] of Object.entries(options.files ?? {})) {
    mkdirSync(dirname(join(rootfs, path)), { recursive: true });
    writeFileSync(join(rootfs, path), content);
  }
  for (const [path, target] of Object.entries(options.links ?? {})) {
    mkdirSync(dirname(join(rootfs, path)), { recursive: true });
    symlinkSync(target, join(rootfs, path));
  }
  return rootfs;
}

/**
 * The layer as an uncompressed tar, owned by root whatever the files' owner
 * on this machine, with fixed times and order so the same options always
 * give the same digests.
 */
function layerTar(rootfs: string): Buffer {
  return execFileSync(
    'tar',
    ['--create', '--file', '-', '--directory', rootfs, '--sort=name', '--mtime=@0', '--numeric-owner', '--owner=0', '--group=0', '.'],
    { maxBuffer: 64 << 20 },
  );
}

/**
 * Builds the image in `dir` (which must exist and be empty) and returns the
 * path of the archive to import.
 */
export function buildImageArchive(dir: string, options: ImageOptions): string {
  const layout = join(dir, 'layout');
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });

  const layer = putBlob(layout, 'application/vnd.oci.image.layer.v1.tar', layerTar(stageRootfs(dir, options)));
  const platform = { architecture: ociArchitecture(), os: 'linux' };
  const config = putJsonBlob(layout, 'application/vnd.oci.image.config.v1+json', {
    ...platform,
    config: {
      ...(options.user !== undefined && { User: options.user }),
      Env: ['PATH=/bin'],
      ...(options.entrypoint !== undefined && { Entrypoint: options.entrypoint }),
      Cmd: options.cmd,
    },
    // Uncompressed, so the layer's diff id is its digest.
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
  });
  const manifest = putJsonBlob(layout, 'application/vnd.oci.image.manifest.v1+json', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config,
    layers: [layer],
  });

  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          ...manifest,
          platform,
          // ctr 1.6 names the image after this annotation as it stands; an
          // OCI ref name alone (a tag) would get an "import-<date>:" prefix.
          annotations: { 'io.containerd.image.name': options.name },
        },
      ],
    }),
  );

  const archive = join(dir, 'image.tar');
  execFileSync('tar', ['--create', '--file', archive, '--directory', layout, 'oci-layout', 'index.json', 'blobs']);
  return archive;
}
