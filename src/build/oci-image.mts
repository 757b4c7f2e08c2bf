/**
 * The release image as an OCI image layout, written directly rather than by
 * an image tool: one tar layer per platform and a handful of JSON documents,
 * each of whose bytes this code decides (sorted entries, one timestamp, fixed key
 * order, gzip from the pinned Node's zlib), so the same inputs always give
 * the same digests, with no container engine and no tool whose output
 * changes with its version.
 *
 * Layout: index.json names one multi-platform image index (tagged with the
 * version, org.opencontainers.image.ref.name), which lists one image
 * manifest per platform; each manifest has one config and one gzip layer.
 * `skopeo copy --all oci-archive:<file>:<version> docker://...` pushes it
 * whole.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Architecture } from './elf.mts';
import { tar, type TarEntry } from './tar.mts';

export const MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: Architecture; os: 'linux' };
  annotations?: Record<string, string>;
}

export interface PlatformImage {
  architecture: Architecture;
  /** The root file system, sorted, parents first. */
  files: TarEntry[];
  entrypoint: string[];
  env: string[];
  labels: Record<string, string>;
}

export interface ImageLayoutInput {
  version: string;
  /** Seconds since the epoch: every timestamp in the image. */
  created: number;
  platforms: PlatformImage[];
  /** Annotations of the multi-platform index. */
  annotations: Record<string, string>;
}

export interface ImageLayout {
  /** The layout's files, ready for tar: oci-layout, index.json, blobs/sha256/*. */
  entries: TarEntry[];
  /** The multi-platform index, the digest a manifest pins. */
  indexDigest: string;
  platforms: { architecture: Architecture; manifestDigest: string; layerSize: number; layerDiffId: string }[];
}

function sha256(content: Buffer): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

export function imageLayout(input: ImageLayoutInput): ImageLayout {
  const blobs = new Map<string, Buffer>();
  const put = (mediaType: string, content: Buffer): Descriptor => {
    const digest = sha256(content);
    blobs.set(digest, content);
    return { mediaType, digest, size: content.length };
  };
  const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), 'utf8');
  const created = new Date(input.created * 1000).toISOString().replace(/\.000Z$/, 'Z');

  const platforms: ImageLayout['platforms'] = [];
  const manifests: Descriptor[] = [];
  for (const image of input.platforms) {
    const layerTar = tar(image.files, input.created);
    // gzip's header holds no name and a zero mtime from zlib; level 9 for the nodes that pull it.
    const layer = put(MEDIA_TYPES.layer, gzipSync(layerTar, { level: 9 }));
    const diffId = sha256(layerTar);
    const platform = { architecture: image.architecture, os: 'linux' as const };
    const config = put(MEDIA_TYPES.config, json({
      created,
      ...platform,
      config: { Entrypoint: image.entrypoint, Env: image.env, Labels: image.labels },
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created, created_by: 'npm run release (src/build/release.mts)' }],
    }));
    const manifest = put(MEDIA_TYPES.manifest, json({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.manifest,
      config,
      layers: [layer],
    }));
    manifests.push({ ...manifest, platform });
    platforms.push({ architecture: image.architecture, manifestDigest: manifest.digest, layerSize: layer.size, layerDiffId: diffId });
  }
  const index = put(MEDIA_TYPES.index, json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests,
    annotations: { ...input.annotations, 'org.opencontainers.image.created': created, 'org.opencontainers.image.version': input.version },
  }));

  const entries: TarEntry[] = [
    { type: 'directory', path: 'blobs', mode: 0o755 },
    { type: 'directory', path: 'blobs/sha256', mode: 0o755 },
    ...[...blobs.keys()].sort().map((digest): TarEntry => ({ type: 'file', path: `blobs/sha256/${digest.slice('sha256:'.length)}`, mode: 0o644, content: blobs.get(digest)! })),
    {
      type: 'file',
      path: 'index.json',
      mode: 0o644,
      content: json({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.index,
        manifests: [{ ...index, annotations: { 'org.opencontainers.image.ref.name': input.version } }],
      }),
    },
    { type: 'file', path: 'oci-layout', mode: 0o644, content: json({ imageLayoutVersion: '1.0.0' }) },
  ];
  return { entries, indexDigest: index.digest, platforms };
}
