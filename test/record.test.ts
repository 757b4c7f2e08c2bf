/**
 * The README's record of hostile inputs and faults says what the suites try:
 * it is written from their case tables, and must not drift from them.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { README, recordInReadme, renderRecord } from './helpers/record';

t.test('the README record is the case tables\' own', async (t) => {
  const current = recordInReadme(readFileSync(README, 'utf8'));
  t.ok(current !== undefined, 'the README has a record section');
  t.equal(current, renderRecord(), 'run `npm run record` after changing a case table');
});
