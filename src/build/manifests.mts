/**
 * The deploy/ manifests as a release ships them: the image named by its
 * repository, tag and digest, so that the kubelet pulls exactly the image
 * SHA256SUMS vouches for, even if the tag is moved. Only the image lines
 * change; every other byte, comments included, stays as in the repository.
 */
import { parseDocument } from 'yaml';

/** The repository in the repository's manifests: .invalid never resolves, so a manifest applied unedited pulls nothing. */
export const PLACEHOLDER_REPOSITORY = 'registry.invalid/strict-groups';

/** A registry host (with a port, perhaps) and a lowercase path: the part of an image reference before the tag. */
const REPOSITORY = /^[A-Za-z0-9.-]+(:[0-9]+)?(\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+$/;

export function imageReference(repository: string, version: string, digest: string): string {
  // It goes into YAML as it stands.
  if (!REPOSITORY.test(repository)) throw new Error(`not an image repository (registry/path, no tag): ${JSON.stringify(repository)}`);
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`not an image digest: ${digest}`);
  return `${repository}:${version}@${digest}`;
}

/** The containers' images of a DaemonSet manifest. */
export function containerImages(text: string, where: string): string[] {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new Error(`${where}: ${doc.errors[0]!.message}`);
  const containers = doc.getIn(['spec', 'template', 'spec', 'containers']) as { items?: unknown[] } | undefined;
  const images = (containers?.items ?? []).map((container) => (container as { get(key: string): unknown }).get('image'));
  if (images.length === 0 || !images.every((image): image is string => typeof image === 'string')) throw new Error(`${where}: no container images`);
  return images;
}

/** `text` with its one image line, `image: <PLACEHOLDER_REPOSITORY>:<version>`, pointing at `image`. */
export function withImage(text: string, version: string, image: string, where: string): string {
  const placeholder = `${PLACEHOLDER_REPOSITORY}:${version}`;
  const images = containerImages(text, where);
  if (images.length !== 1 || images[0] !== placeholder) {
    throw new Error(`${where}: the container image must be ${placeholder} (package.json's version), not ${images.join(', ')}`);
  }
  const line = new RegExp(`^(\\s+image: )${placeholder.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm');
  const edited = text.replace(line, (_whole, prefix: string) => `${prefix}${image}`);
  const after = containerImages(edited, where);
  if (after.length !== 1 || after[0] !== image) throw new Error(`${where}: the image line is not a plain "image: ${placeholder}"`);
  return edited;
}
