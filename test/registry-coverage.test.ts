/**
 * The registry (`RULES`) is the one list of optimizers: every other list is derived from
 * it or checked against it here, so that a rule added to the registry and forgotten in a
 * fixture or in the test tables turns the build red.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RULES, registered } from 'nesterov';
import { REGISTRY } from './registry.ts';

const fixturesDir = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** Class names of the optimizers that reference fixtures (a committed generator each) cover. */
function fixtureOptimizers(): Set<string> {
  const names = new Set<string>();
  // The first rules' fixture files, and one file per later rule in fixtures/rules/ (test/reference-rules.test.ts runs those).
  const files = [...readdirSync(fixturesDir).filter((f) => f.endsWith('.json')), ...readdirSync(`${fixturesDir}rules/`).filter((f) => f.endsWith('.json')).map((f) => `rules/${f}`)];
  for (const file of files) {
    const data = JSON.parse(readFileSync(fixturesDir + file, 'utf8')) as { cases?: { ours?: { optimizer: string }[] }[]; reference?: unknown; band?: unknown };
    for (const fixture of data.cases ?? []) for (const ours of fixture.ours ?? []) names.add(ours.optimizer);
    // Muon's fixture (generate_muon.py) has its own layout: trajectories of the authors' muon.py.
    if (file === 'reference-muon.json') names.add('Muon');
  }
  return names;
}

describe('the registry is the list every other list follows', () => {
  const fixtures = fixtureOptimizers();
  for (const entry of RULES) {
    it(`${entry.name} ('${entry.key}') has a reference fixture, test settings and describes itself`, () => {
      assert.ok(fixtures.has(entry.name), `no fixture in test/fixtures/*.json runs ${entry.name}: add its case to a generator`);
      if (entry.rule !== undefined) {
        assert.ok(REGISTRY.some((row) => row.id === entry.name || row.id.startsWith(`${entry.name}/`)), `test/registry.ts has no settings for ${entry.name}`);
        assert.equal(entry.rule.name, entry.name);
        assert.equal(entry.rule.key, entry.key);
      }
      assert.match(entry.key, /^[a-z][a-z0-9-]*$/);
      assert.match(entry.paper, /\(\d{4}\)/, 'the paper names its year');
      assert.ok(['coupled', 'decoupled', 'update'].includes(entry.weightDecayKind));
      // The optimizer it makes says which rule it runs, with no instanceof chain.
      const made = entry.make() as unknown as { rule: { key: string } };
      assert.equal(made.rule.key, entry.key);
      assert.equal(registered(entry.key), entry);
      assert.equal(registered(entry.name), entry);
    });
  }

  it('keys and names are unique', () => {
    assert.equal(new Set(RULES.map((entry) => entry.key)).size, RULES.length);
    assert.equal(new Set(RULES.map((entry) => entry.name)).size, RULES.length);
  });

  it('the test tables name no optimizer the registry lacks', () => {
    for (const row of REGISTRY) assert.ok(registered(row.id.split('/')[0]!) !== undefined, `test/registry.ts row ${row.id} is not a registered optimizer`);
  });
});
