// The contract every format detector's verdict keeps (DESIGN.md: a walk cut
// short by any budget or depth limit is `unknown`, never `safe`). Detectors
// report what they did not check in safety.incomplete; the fuzz suites check
// every result they get against this.
import assert from 'node:assert/strict';
import type { FileFormat } from '../../src/formats/types.ts';

/** Asserts the contract on one result; returns whether its check was cut short. */
export function assertSafetyContract(f: FileFormat, what: string): boolean {
  const { verdict, findings, incomplete } = f.safety;
  const cut = incomplete !== undefined && incomplete.length > 0;
  const show = (): string => `${what}: ${JSON.stringify(f.safety).slice(0, 500)}`;
  switch (verdict) {
    case 'safe':
      assert.ok(!cut, `safe although its check was cut short — ${show()}`);
      assert.equal(findings.length, 0, show());
      break;
    case 'unknown':
      assert.ok(cut, `unknown without saying what was not checked — ${show()}`);
      assert.equal(findings.length, 0, show());
      break;
    case 'unsafe':
      assert.ok(findings.length > 0, show());
      break;
    default:
      assert.fail(`bad verdict — ${show()}`);
  }
  return cut;
}
