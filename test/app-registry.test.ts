/**
 * The main job's optimizer table is checked against the registry: every optimizer it
 * trains runs a registered rule (its CLI name is the rule's key, or the key and a
 * variant), so a rule renamed or dropped from the registry turns this red.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { RULES, partition, type OptimizerLike } from 'nesterov';
import { OPTIMIZERS } from '../app/optimizers.ts';

/** The rule keys an optimizer of the table runs (a partition: its members'). */
function keysOf(optimizer: unknown): string[] {
  const members = (optimizer as Partial<ReturnType<typeof partition>>).members as Record<string, OptimizerLike> | undefined;
  if (members !== undefined) return Object.values(members).flatMap(keysOf);
  return [(optimizer as { rule: { key: string } }).rule.key];
}

for (const [name, entry] of Object.entries(OPTIMIZERS)) {
  it(`npm start's ${name} runs registered rules, and its name is its rule's key`, () => {
    const keys = keysOf(entry.make(entry.lr));
    for (const key of keys) assert.ok(RULES.some((rule) => rule.key === key), `${name} runs '${key}', which is not in RULES`);
    assert.ok(keys.some((key) => name === key || name.startsWith(`${key}-`)), `${name} is named for none of [${keys.join(', ')}]`);
  });
}
