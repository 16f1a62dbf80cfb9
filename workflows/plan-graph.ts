/**
 * Pure functions over a plan's dependency graph, shared by the API (validation) and the plan workflow
 * (scheduling). Workflow-safe: no Node built-ins, deterministic.
 */

export interface PlanNode {
  key: string;
  dependsOn: readonly string[];
}

export interface GraphProblem {
  /** Index of the offending task in the plan, when one task is at fault. */
  index?: number;
  /** That task's field at fault. */
  field?: 'key' | 'dependsOn';
  message: string;
}

/**
 * One dependency cycle of the graph as a path that ends where it starts (`['a', 'b', 'a']`), or
 * undefined when there is none. Dependencies on unknown keys are ignored here (see `findGraphProblems`).
 */
export function findCycle(nodes: readonly PlanNode[]): string[] | undefined {
  const byKey = new Map(nodes.map((n) => [n.key, n]));
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (key: string): string[] | undefined => {
    const seen = state.get(key);
    if (seen === 'done') return undefined;
    if (seen === 'open') return [...path.slice(path.indexOf(key)), key];
    state.set(key, 'open');
    path.push(key);
    for (const dep of byKey.get(key)?.dependsOn ?? []) {
      if (!byKey.has(dep)) continue;
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(key, 'done');
    return undefined;
  };
  for (const node of nodes) {
    const cycle = visit(node.key);
    if (cycle) return cycle;
  }
  return undefined;
}

/** Duplicate keys, dependencies on unknown keys or on the task itself, and cycles, each named. */
export function findGraphProblems(nodes: readonly PlanNode[]): GraphProblem[] {
  const problems: GraphProblem[] = [];
  const keys = new Set<string>();
  nodes.forEach((node, index) => {
    if (keys.has(node.key))
      problems.push({ index, field: 'key', message: `key "${node.key}" is used by more than one task` });
    keys.add(node.key);
  });
  nodes.forEach((node, index) => {
    for (const dep of node.dependsOn) {
      if (dep === node.key) {
        problems.push({ index, field: 'dependsOn', message: `task "${node.key}" depends on itself` });
      } else if (!keys.has(dep)) {
        problems.push({ index, field: 'dependsOn', message: `dependsOn names unknown key "${dep}"` });
      }
    }
  });
  if (problems.length > 0) return problems;
  const cycle = findCycle(nodes);
  if (cycle) problems.push({ message: `dependency cycle: ${cycle.join(' -> ')}` });
  return problems;
}

/**
 * Every task that depends on a key, directly or through others (not the key itself). The graph is
 * indexed once: each ask then visits only the dependants it finds, so a plan reacting to many failures
 * does not rescan the whole graph for each.
 */
export function dependantsIndex(nodes: readonly PlanNode[]): (key: string) => Set<string> {
  const direct = new Map<string, string[]>();
  for (const node of nodes) {
    for (const dep of node.dependsOn) {
      const dependants = direct.get(dep);
      if (dependants) dependants.push(node.key);
      else direct.set(dep, [node.key]);
    }
  }
  return (key) => {
    const found = new Set<string>();
    const queue = [key];
    for (let current = queue.pop(); current !== undefined; current = queue.pop()) {
      for (const dependant of direct.get(current) ?? []) {
        if (found.has(dependant)) continue;
        found.add(dependant);
        queue.push(dependant);
      }
    }
    return found;
  };
}
