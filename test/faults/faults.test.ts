/**
 * The fault table (fault-cases.ts) through the built shim in front of real
 * runc, as root: each case mounts, kills or breaks what it needs and takes it
 * down again.
 */
import t from 'tap';
import { missingPrograms, prerequisites, skipOrFail, workspace } from '../helpers/oci';
import { FAULT_CASES } from './fault-cases';

const skip = prerequisites('runc') ?? skipOrFail('faults suite', missingPrograms(['strace', 'prlimit', 'mount', 'umount']));
// A watchdog for hangs (a kill point that leaves the shim stuck), not a speed limit.
t.test('faults', { skip: skip ?? false, timeout: 180_000 }, async (t) => {
  const ws = workspace('runc');
  t.teardown(() => ws.cleanup());
  const ctx = { ws, root: ['--root', ws.stateRoot] };
  for (const fault of FAULT_CASES) {
    t.test(`${fault.record.area}: ${fault.record.tried}`, (t) => fault.run(t, ctx));
  }
});
