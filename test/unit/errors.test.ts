import t from 'tap';
import { quoted } from '../../src/errors';

t.test('quoted: one line whatever the value, cut when long', async (t) => {
  t.equal(quoted('Strict'), '"Strict"');
  t.equal(quoted('a\nb"c\u2028'), '"a\\nb\\"c\u2028"', 'newlines and quotes escaped');
  t.equal(quoted('v'.repeat(256)), JSON.stringify('v'.repeat(256)), '256 characters whole');
  t.equal(quoted('v'.repeat(257)), `${JSON.stringify('v'.repeat(256))}... (257 characters)`, 'longer cut, its length said');
  t.equal(quoted('v'.repeat(255) + '\ud83d\ude00'), `"${'v'.repeat(255)}\\ud83d"... (257 characters)`, 'a pair cut in half stays escaped');
});
