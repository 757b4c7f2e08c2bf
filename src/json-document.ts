import { ShimError } from './errors';

/**
 * JSON that survives a parse and stringify unchanged but for what the shim
 * edits. A plain JSON.parse would turn an int64 such as a memory limit of
 * 9223372036854775807 into a double and write it back wrong; every number
 * whose text a double cannot reproduce is kept as its source text instead.
 */

type Reviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;

interface RawJSONApi {
  rawJSON(text: string): unknown;
}

const rawJSON = (JSON as unknown as Partial<RawJSONApi>).rawJSON;

const keepNumberText: Reviver = (_key, value, context) => {
  if (typeof value === 'number' && context?.source !== undefined && String(value) !== context.source) {
    return rawJSON!(context.source);
  }
  return value;
};

export function parseDocument(text: string, what: string): unknown {
  // Before Node 21 neither the source text nor rawJSON exist: refuse rather than round.
  if (rawJSON === undefined) throw new ShimError(`cannot rewrite ${what} exactly: Node ${process.version} has no JSON.rawJSON`);
  try {
    return JSON.parse(text, keepNumberText as Parameters<typeof JSON.parse>[1]);
  } catch (err) {
    throw new ShimError(`${what}: not valid JSON: ${(err as Error).message}`);
  }
}

export function serializeDocument(document: unknown): string {
  return JSON.stringify(document);
}
