/**
 * Properties of the config.json and exec process rewrite (src/json-document.ts
 * parseDocument/serializeDocument, src/bundle.ts withAdditionalGids and
 * withRecords) on arbitrary OCI-like documents: unknown keys at every
 * level (the shim's own key names among them, in places it does not own),
 * nested arrays and objects, numbers in every JSON spelling (int64 and uint64
 * extremes, 1.50, -0, 1e400), strings with lone surrogates. Everything but
 * process.user.additionalGids and the removed-gids annotation must come back
 * as it was (and the decision record, which is always written); numbers are
 * compared by their source text.
 * test/unit/bundle.test.ts holds the worked cases.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { DECISION_ANNOTATION, REMOVED_GIDS_ANNOTATION } from '../../src/annotations';
import { withAdditionalGids, withRecords, type BundleConfig, type ExecProcess } from '../../src/bundle';
import { parseDocument, serializeDocument } from '../../src/json-document';
import { formatGidList } from '../../src/policy';
import { assertProperty, gid, gidList, text } from '../helpers/properties';

const RUNS = { numRuns: 500 };

/** A JSON value with every number kept as its source text and every object as its entries in order. */
type Json = null | boolean | string | NumberText | Json[] | JsonObject;
interface NumberText {
  number: string;
}
interface JsonObject {
  entries: [string, Json][];
}

const isNumber = (value: Json): value is NumberText => typeof value === 'object' && value !== null && 'number' in value;
const isObject = (value: Json): value is JsonObject => typeof value === 'object' && value !== null && 'entries' in value;

/** JSON text of a model: compact, or indented to show the parse drops white space. */
function serialize(value: Json, indent = ''): string {
  const nl = indent === '' ? '' : `\n${indent}`;
  const deeper = indent === '' ? '' : `${indent}  `;
  if (isNumber(value)) return value.number;
  if (Array.isArray(value)) return `[${value.map((item) => `${nl}${serialize(item, deeper)}`).join(',')}]`;
  if (isObject(value)) return `{${value.entries.map(([key, item]) => `${nl}${JSON.stringify(key)}:${serialize(item, deeper)}`).join(',')}}`;
  return JSON.stringify(value);
}

/** Reads JSON text back into a model, numbers by their source text. */
function readModel(textOfDocument: string): Json {
  class Source {
    readonly text: string;
    constructor(text: string) {
      this.text = text;
    }
  }
  const toModel = (value: unknown): Json => {
    if (value instanceof Source) return { number: value.text };
    if (Array.isArray(value)) return value.map(toModel);
    if (typeof value === 'object' && value !== null) return { entries: Object.entries(value).map(([key, item]) => [key, toModel(item)]) };
    return value as Json;
  };
  const reviver = (_key: string, value: unknown, context?: { source?: string }): unknown =>
    typeof value === 'number' && context?.source !== undefined ? new Source(context.source) : value;
  return toModel(JSON.parse(textOfDocument, reviver as Parameters<typeof JSON.parse>[1]));
}

/** A model with every object's entries sorted by key: equality regardless of key order. */
function sortedKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (isObject(value)) {
    return { entries: value.entries.map(([key, item]): [string, Json] => [key, sortedKeys(item)]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) };
  }
  return value;
}

/** JSON number texts: the grammar at random, and the spellings a double cannot reproduce. */
const numberText: fc.Arbitrary<NumberText> = fc
  .oneof(
    fc.constantFrom('9223372036854775807', '-9223372036854775808', '18446744073709551615', '9007199254740993', '1.50', '-0', '-0.0', '1e400', '-1e-400', '1E2', '0.1', '100', '0'),
    fc
      .tuple(
        fc.constantFrom('', '-'),
        fc.oneof(fc.constant('0'), fc.tuple(fc.integer({ min: 1, max: 9 }), fc.string({ unit: fc.constantFrom(...'0123456789'), maxLength: 22 })).map(([lead, rest]) => `${lead}${rest}`)),
        fc.option(fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 1, maxLength: 20 }).map((digits) => `.${digits}`), { nil: '' }),
        fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.integer({ min: 0, max: 999 })).map((parts) => parts.join('')), { nil: '' }),
      )
      .map((parts) => parts.join('')),
  )
  .map((number) => ({ number }));

/** Array indices ("0", "42"): JS puts such keys first in an object, whatever the text's order. */
const isIndexKey = (key: string): boolean => /^(0|[1-9][0-9]*)$/.test(key) && Number(key) < 2 ** 32 - 1;

/** Object keys: OCI's, the shim's own names where it does not own them, prototype names, anything. */
function keyArbitrary(indexKeys: boolean): fc.Arbitrary<string> {
  const keys = fc.oneof(
    fc.constantFrom('ociVersion', 'linux', 'resources', 'limit', 'user', 'process', 'annotations', 'additionalGids', 'uid', 'gid', REMOVED_GIDS_ANNOTATION, '__proto__', 'constructor', 'toString', '', '0', '7', '-1', '1.0'),
    text({ loneSurrogates: true, maxLength: 10 }),
  );
  return indexKeys ? keys : keys.filter((key) => !isIndexKey(key));
}

/** Entries with distinct keys, none of `reserved`. */
function entries(key: fc.Arbitrary<string>, value: fc.Arbitrary<Json>, reserved: readonly string[] = [], maxLength = 4): fc.Arbitrary<[string, Json][]> {
  return fc.uniqueArray(fc.tuple(key.filter((k) => !reserved.includes(k)), value), { selector: ([k]) => k, maxLength });
}

/** Any JSON value, nested a few levels. */
function anyValue(key: fc.Arbitrary<string>): fc.Arbitrary<Json> {
  return fc.letrec<{ value: Json }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant(null),
      fc.boolean(),
      numberText,
      text({ loneSurrogates: true }),
      fc.array(tie('value'), { maxLength: 4 }),
      entries(key, tie('value')).map((list) => ({ entries: list })),
    ),
  })).value;
}

/**
 * An object of the `fixed` entries and arbitrary others, in arbitrary order;
 * no other entry takes a key of `owned` (an OCI field with a type of its own).
 */
function objectWith(fixed: [string, Json][], key: fc.Arbitrary<string>, owned: readonly string[] = []): fc.Arbitrary<JsonObject> {
  const reserved = [...fixed.map(([k]) => k), ...owned];
  return entries(key, anyValue(key), reserved)
    .chain((extra) => fc.shuffledSubarray([...fixed, ...extra], { minLength: fixed.length + extra.length }))
    .map((list) => ({ entries: list }));
}

const gidValue = (g: number): NumberText => ({ number: String(g) });

/** process.user: uid, gid, maybe additionalGids, and unknown fields (umask, username, ...). */
function userObject(key: fc.Arbitrary<string>): fc.Arbitrary<JsonObject> {
  return fc
    .tuple(gid, gid, fc.option(gidList, { nil: undefined }))
    .chain(([uid, primary, additional]) => {
      const fixed: [string, Json][] = [['uid', gidValue(uid)], ['gid', gidValue(primary)]];
      if (additional !== undefined) fixed.push(['additionalGids', additional.map(gidValue)]);
      return objectWith(fixed, key, ['additionalGids']);
    });
}

/** An OCI-like config.json: process.user, root.path, maybe annotations (the record among them, maybe), and anything else. */
function configDocument(indexKeys: boolean): fc.Arbitrary<JsonObject> {
  const key = keyArbitrary(indexKeys);
  const annotations = fc
    .tuple(entries(key, text({ loneSurrogates: true })), fc.option(gidList.map(formatGidList), { nil: undefined }), fc.option(text(), { nil: undefined }))
    .map(([list, record, decision]) => {
      const others: [string, Json][] = list.filter(([k]) => k !== REMOVED_GIDS_ANNOTATION && k !== DECISION_ANNOTATION);
      if (record !== undefined) others.push([REMOVED_GIDS_ANNOTATION, record]);
      if (decision !== undefined) others.push([DECISION_ANNOTATION, decision]);
      return { entries: others } as JsonObject;
    })
    .chain((object) => fc.shuffledSubarray(object.entries, { minLength: object.entries.length }).map((list) => ({ entries: list })));
  return fc
    .tuple(
      userObject(key).chain((user) => objectWith([['user', user]], key)),
      objectWith([['path', 'rootfs']], key),
      fc.option(annotations, { nil: undefined }),
    )
    .chain(([process, root, annotationsObject]) => {
      const fixed: [string, Json][] = [['process', process], ['root', root]];
      if (annotationsObject !== undefined) fixed.push(['annotations', annotationsObject]);
      return objectWith(fixed, key, ['annotations']);
    });
}

/** `object` with `key` set to `value` where it stands, or appended, or removed (undefined): what a JS spread-and-assign does. */
function withEntry(object: JsonObject, key: string, value: Json | undefined): JsonObject {
  const at = object.entries.findIndex(([k]) => k === key);
  const list = [...object.entries];
  if (value === undefined) {
    if (at !== -1) list.splice(at, 1);
  } else if (at === -1) {
    list.push([key, value]);
  } else {
    list[at] = [key, value];
  }
  return { entries: list };
}

function entryOf(object: JsonObject, key: string): Json | undefined {
  return object.entries.find(([k]) => k === key)?.[1];
}

/** The decision record a create writes: any text, as far as the rewrite is concerned. */
const DECISION = '{"policy":"Strict","policySource":"annotation","rule":"declared","ruleReason":"a \\"CRI\\"\u2028","removed":[50000]}';

/** The document with the owned fields edited (additionalGids, the two records), and nothing else. */
function expectedConfig(document: JsonObject, gids: number[], record: string | undefined): JsonObject {
  const process = entryOf(document, 'process') as JsonObject;
  const user = entryOf(process, 'user') as JsonObject;
  const editedProcess = withEntry(process, 'user', withEntry(user, 'additionalGids', gids.map(gidValue)));
  const annotations = (entryOf(document, 'annotations') as JsonObject | undefined) ?? { entries: [] };
  const records = withEntry(withEntry(annotations, REMOVED_GIDS_ANNOTATION, record), DECISION_ANNOTATION, DECISION);
  return withEntry(withEntry(document, 'process', editedProcess), 'annotations', records);
}

/** The rewrite create does, through the real functions. */
function rewriteConfig(input: string, gids: number[], record: string | undefined): string {
  const config = parseDocument(input, 'config.json') as BundleConfig;
  const process = withAdditionalGids(config.process, gids);
  return serializeDocument(withRecords({ ...config, process }, { removedGids: record, decision: DECISION }));
}

/**
 * The record to write: a list, or undefined to drop one. Dropping happens
 * only where a record exists (decideCreate rewrites under Merge only to drop
 * a pod-set record), so a config without annotations only ever gets a list.
 */
function recordFor(document: JsonObject): fc.Arbitrary<string | undefined> {
  const list = gidList.map(formatGidList);
  return entryOf(document, 'annotations') === undefined ? list : fc.option(list, { nil: undefined });
}

const configCase = (indexKeys: boolean): fc.Arbitrary<[JsonObject, number[], string | undefined, boolean]> =>
  configDocument(indexKeys).chain((document) => fc.tuple(fc.constant(document), gidList, recordFor(document), fc.boolean()));

t.test('config.json: every path but the owned ones comes back, numbers by their text', async (t) => {
  assertProperty(
    fc.property(configCase(true), ([document, gids, record, indented]) => {
      const output = rewriteConfig(serialize(document, indented ? '  ' : ''), gids, record);
      assert.deepEqual(sortedKeys(readModel(output)), sortedKeys(expectedConfig(document, gids, record)));
    }),
    RUNS,
  );
  t.pass('only additionalGids and the record differ');
});

t.test('config.json without index-like keys: byte for byte the compact input, but the owned fields', async (t) => {
  // Index-like keys ("0", "42") move to the front of their object, as in
  // any JS object; Go's decoder does not care about key order.
  assertProperty(
    fc.property(configCase(false), ([document, gids, record, indented]) => {
      const output = rewriteConfig(serialize(document, indented ? '  ' : ''), gids, record);
      assert.equal(output, serialize(expectedConfig(document, gids, record)));
    }),
    RUNS,
  );
  t.pass('key order and every byte kept');
});

t.test('exec process file: every path but user.additionalGids comes back', async (t) => {
  const processCase = fc.boolean().chain((indexKeys) => {
    const key = keyArbitrary(indexKeys);
    return fc.tuple(userObject(key).chain((user) => objectWith([['user', user]], key)), gidList, fc.constant(indexKeys));
  });
  assertProperty(
    fc.property(processCase, ([document, gids, indexKeys]) => {
      const output = serializeDocument(withAdditionalGids(parseDocument(serialize(document, '  '), 'process.json') as ExecProcess, gids));
      const user = entryOf(document, 'user') as JsonObject;
      const expected = withEntry(document, 'user', withEntry(user, 'additionalGids', gids.map(gidValue)));
      if (indexKeys) assert.deepEqual(sortedKeys(readModel(output)), sortedKeys(expected));
      else assert.equal(output, serialize(expected));
    }),
    RUNS,
  );
  t.pass('only additionalGids differs');
});

t.test('the comparison sees a number that lost its text', async (t) => {
  // Plain JSON.parse/stringify turns 1.50 into 1.5 and 9223372036854775807
  // into 9223372036854776000: the same check must reject that.
  const lossy = (input: string): string => JSON.stringify(JSON.parse(input));
  const found = fc.check(
    fc.property(configCase(false), ([document]) => {
      assert.equal(lossy(serialize(document)), serialize(document));
    }),
    RUNS,
  );
  t.ok(found.failed, 'a lossy parse is caught');
});
