import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dependantsIndex, findCycle, findGraphProblems, type PlanNode } from '../../workflows/plan-graph';

const graph = (edges: Record<string, string[]>): PlanNode[] =>
  Object.entries(edges).map(([key, dependsOn]) => ({ key, dependsOn }));

describe('plan graph', () => {
  it('finds no cycle in a diamond, a chain or a fan-out', () => {
    assert.equal(findCycle(graph({ a: [], b: ['a'], c: ['a'], d: ['b', 'c'] })), undefined);
    assert.equal(findCycle(graph({ a: [], b: ['a'], c: ['b'], d: ['c'] })), undefined);
    assert.equal(findCycle(graph({ root: [], x: ['root'], y: ['root'], z: ['root'] })), undefined);
  });

  it('names a cycle as a path that ends where it starts', () => {
    assert.deepEqual(findCycle(graph({ a: ['c'], b: ['a'], c: ['b'], d: [] })), ['a', 'c', 'b', 'a']);
    assert.deepEqual(findCycle(graph({ x: [], a: ['x', 'b'], b: ['a'] })), ['a', 'b', 'a']);
  });

  it('reports duplicate keys, unknown dependencies and self-dependencies by task index and field', () => {
    assert.deepEqual(findGraphProblems(graph({ a: ['nope'], b: ['b'] })), [
      { index: 0, field: 'dependsOn', message: 'dependsOn names unknown key "nope"' },
      { index: 1, field: 'dependsOn', message: 'task "b" depends on itself' },
    ]);
    assert.deepEqual(
      findGraphProblems([
        { key: 'a', dependsOn: [] },
        { key: 'a', dependsOn: [] },
      ]),
      [{ index: 1, field: 'key', message: 'key "a" is used by more than one task' }],
    );
  });

  it('reports a cycle with its whole path', () => {
    assert.deepEqual(findGraphProblems(graph({ a: ['b'], b: ['c'], c: ['a'] })), [
      { message: 'dependency cycle: a -> b -> c -> a' },
    ]);
    assert.deepEqual(findGraphProblems(graph({ a: [], b: ['a'] })), []);
  });

  it('finds every transitive dependant, not the task itself or unrelated ones', () => {
    const dependantsOf = dependantsIndex(graph({ a: [], b: ['a'], c: ['b'], d: ['c', 'e'], e: [], f: ['e'] }));
    assert.deepEqual([...dependantsOf('a')].sort(), ['b', 'c', 'd']);
    assert.deepEqual([...dependantsOf('e')].sort(), ['d', 'f']);
    assert.deepEqual([...dependantsOf('d')], []);
    assert.deepEqual([...dependantsOf('unknown')], []);
  });
});
