import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import Ajv from 'ajv';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseAgentsFile } from '../../src/config/agents-file';
import { PAGE as LOG_PAGE } from '../../src/api/logs/log-stream.service';
import { API_STOP_DEADLINE_MS } from '../../src/api/stop-deadline';
import { assertApiAccess } from '../../src/config/api-access';
import { loadConfig } from '../../src/config/env';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../../src/temporal/dev-server';
import { STOP_MARGIN_SECONDS } from '../../src/up/stop-grace';
import { CLEANUP_DEADLINE_MS } from '../../src/workers/run-worker-process';
import { ROOT } from '../support/test-env';

/**
 * The deployment files are code nobody runs in CI: parse them, validate them against the published
 * schemas (Kubernetes and KEDA models from npm, the Compose specification's schema shipped in dclint),
 * and check the invariants the schemas cannot see: selectors that select, probes on the health
 * endpoints, grace periods longer than the drain, and the autoscaler pointed at the right queue.
 */

const K8S_DIR = resolve(ROOT, 'infra/k8s');

const WORKFLOW_STOP_MARGIN = CLEANUP_DEADLINE_MS / 1000 + 5;

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}
interface PodSpec {
  terminationGracePeriodSeconds?: number;
  containers: Container[];
  initContainers?: Container[];
  volumes?: {
    name: string;
    configMap?: { name: string };
    persistentVolumeClaim?: { claimName: string };
    emptyDir?: { sizeLimit?: string };
  }[];
}
interface DeploymentDoc extends Doc {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
  };
}

const MODELS: Record<string, new (data: never) => { validate: () => void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
};

function loadK8s(): { file: string; doc: Doc }[] {
  const files = readdirSync(K8S_DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  return files.flatMap((file) =>
    parseAllDocuments(readFileSync(join(K8S_DIR, file), 'utf8')).map((d) => {
      assert.deepEqual(d.errors, [], `${file} parses`);
      return { file, doc: d.toJS() as Doc };
    }),
  );
}

const selects = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

const envOf = (c: Container, configs: Map<string, Record<string, string>>): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    const name = from.configMapRef?.name ?? from.secretRef?.name ?? '';
    Object.assign(env, configs.get(name) ?? {});
  }
  for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  return env;
};

/** A memory quantity (`512Mi`, `1G`, `4096`) in bytes. */
const bytesOf = (quantity: string): number => {
  const m = /^(\d+)(Ki|Mi|Gi|k|M|G)?$/.exec(quantity);
  assert.ok(m, `a memory quantity this test reads: ${quantity}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, k: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
};

interface Trigger {
  type: string;
  name?: string;
  metadata: Record<string, string>;
}
interface ScaledObjectDoc extends Doc {
  spec: {
    scaleTargetRef: { name: string; kind?: string; envSourceContainerName?: string };
    minReplicaCount: number;
    maxReplicaCount: number;
    fallback?: { failureThreshold: number; replicas: number; behavior?: string };
    advanced?: {
      scalingModifiers?: { formula?: string; target?: string; activationTarget?: string; metricType?: string };
    };
    triggers: Trigger[];
  };
}

/**
 * A trigger's parameter as KEDA's typed config reads it: the trigger's metadata first, then (for the
 * parameters that allow it) the environment variable `<name>FromEnv` names, in the scale target's container.
 */
const kedaParam = (trigger: Trigger, name: string, env: Record<string, string>): string | undefined => {
  const fromEnv = trigger.metadata[`${name}FromEnv`];
  return trigger.metadata[name] ?? (fromEnv === undefined ? undefined : env[fromEnv]);
};

/**
 * The replica count KEDA's HPA settles on, given each trigger's metric (by trigger type) and the current
 * count. Without `scalingModifiers`, each trigger is its own AverageValue metric and the HPA takes the
 * largest count any of them asks for; with them, the formula (here: a sum of trigger names) makes one
 * metric over `target`. The HPA keeps the count while the ratio is within its 10% tolerance.
 */
const kedaReplicas = (scaled: ScaledObjectDoc, metric: Record<string, number>, current: number): number => {
  const valueOf = (t: Trigger): number => {
    const value = metric[t.type];
    assert.ok(value !== undefined, `a value for the ${t.type} trigger`);
    return value;
  };
  const proposal = (value: number, target: number): number => {
    const ratio = value / (target * current);
    return Math.abs(ratio - 1) <= 0.1 ? current : Math.ceil(value / target);
  };
  const modifiers = scaled.spec.advanced?.scalingModifiers;
  let desired: number;
  if (modifiers?.formula) {
    assert.equal(modifiers.metricType ?? 'AverageValue', 'AverageValue', 'the formula is an average over pods');
    const names = modifiers.formula.split('+').map((n) => n.trim());
    assert.ok(
      names.every((n) => /^\w+$/.test(n)),
      `this model reads a sum of trigger names: ${modifiers.formula}`,
    );
    const sum = names.reduce((total, name) => {
      const trigger = scaled.spec.triggers.find((t) => t.name === name);
      assert.ok(trigger, `the formula's ${name} names a trigger`);
      return total + valueOf(trigger);
    }, 0);
    desired = proposal(sum, Number(modifiers.target));
  } else {
    const target = (t: Trigger): number => Number(t.metadata.targetQueueSize ?? t.metadata.threshold);
    desired = Math.max(...scaled.spec.triggers.map((t) => proposal(valueOf(t), target(t))));
  }
  return Math.min(scaled.spec.maxReplicaCount, Math.max(scaled.spec.minReplicaCount, desired));
};

/** docker-compose.yml, as the YAML parser reads it (`${…}` left as written). */
const compose = parseYaml(readFileSync(resolve(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<
    string,
    {
      command?: string[];
      stop_grace_period?: string;
      environment?: Record<string, string | number | null>;
      healthcheck?: { test: string[] };
      volumes?: string[];
    }
  >;
  configs?: Record<string, { content?: string }>;
};

describe('infra/k8s manifests', () => {
  const docs = loadK8s();
  const byKind = (kind: string): Doc[] => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);
  const deployments = byKind('Deployment') as DeploymentDoc[];
  const deployment = (component: string): DeploymentDoc => {
    const found = deployments.find((d) => d.metadata.labels?.['app.kubernetes.io/component'] === component);
    assert.ok(found, `a Deployment for ${component}`);
    return found;
  };
  // ConfigMap data and Secret stringData by name, as envFrom sees them; the secrets' placeholders replaced,
  // as their file asks an operator to.
  const configs = new Map<string, Record<string, string>>();
  for (const d of byKind('ConfigMap')) configs.set(d.metadata.name, (d.data ?? {}) as Record<string, string>);
  const shippedSecrets = new Map<string, Record<string, string>>();
  for (const d of byKind('Secret')) {
    const data = (d.stringData ?? {}) as Record<string, string>;
    shippedSecrets.set(d.metadata.name, data);
    const replaced = Object.entries(data).map(([k, v]) => [k, v.replaceAll('change-me', 'an-operators-own-secret')]);
    configs.set(d.metadata.name, Object.fromEntries(replaced) as Record<string, string>);
  }
  const agentsText = configs.get('atelier-agents')?.['agents.yaml'];

  it('validates every document against the Kubernetes, KEDA and Prometheus Operator schemas', () => {
    assert.ok(docs.length >= 10, `found ${docs.length} documents`);
    for (const { file, doc } of docs) {
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
      assert.ok(Model, `${file}: ${doc.apiVersion} ${doc.kind} is a kind this test knows`);
      assert.doesNotThrow(() => new Model(doc as never).validate(), `${file}: ${doc.kind} ${doc.metadata?.name}`);
    }
  });

  it('has Deployments for the API, the workflow workers and the agent workers, and the kustomization lists every file', () => {
    for (const c of ['api', 'workflow-worker', 'agent-worker']) deployment(c);
    const kustomization = parseYaml(readFileSync(join(K8S_DIR, 'kustomization.yaml'), 'utf8')) as {
      resources: string[];
      images: { name: string }[];
    };
    const files = readdirSync(K8S_DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    assert.deepEqual([...kustomization.resources].sort(), files.sort());
    assert.ok(kustomization.images.some((i) => i.name === 'atelier'));
  });

  it('selects what it means to: Deployments their pods, Services and budgets a Deployment', () => {
    for (const d of deployments) {
      assert.ok(
        selects(d.spec.selector.matchLabels, d.spec.template.metadata.labels),
        `${d.metadata.name}: the selector matches the pod labels`,
      );
    }
    const podLabels = deployments.map((d) => d.spec.template.metadata.labels);
    for (const s of byKind('Service')) {
      const spec = s.spec as { selector: Record<string, string>; ports: { targetPort: string | number }[] };
      const targets = deployments.filter((d) => selects(spec.selector, d.spec.template.metadata.labels));
      assert.equal(targets.length, 1, `Service ${s.metadata.name} selects one Deployment`);
      const ports = targets[0]?.spec.template.spec.containers.flatMap((c) => c.ports ?? []) ?? [];
      for (const p of spec.ports) {
        assert.ok(
          ports.some((cp) => cp.name === p.targetPort || cp.containerPort === p.targetPort),
          `Service ${s.metadata.name}: target port ${p.targetPort} exists`,
        );
      }
    }
    const pdbs = byKind('PodDisruptionBudget');
    assert.equal(pdbs.length, 3, 'a budget per Deployment');
    for (const p of pdbs) {
      const selector = (p.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
      assert.equal(podLabels.filter((l) => selects(selector, l)).length, 1, `PDB ${p.metadata.name} selects one`);
    }
  });

  it("keeps the image's entrypoint, tini, as every container's PID 1", () => {
    const dockerfile = readFileSync(resolve(ROOT, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m, 'the image starts its command under tini');
    for (const d of deployments) {
      for (const c of [...d.spec.template.spec.containers, ...(d.spec.template.spec.initContainers ?? [])]) {
        assert.equal(c.command, undefined, `${d.metadata.name}/${c.name}: \`command\` would replace the entrypoint`);
        assert.equal(c.args?.[0], 'node', `${d.metadata.name}/${c.name}: names its program in args`);
      }
    }
  });

  it('probes the health endpoints on declared ports', () => {
    for (const d of deployments) {
      for (const c of d.spec.template.spec.containers) {
        const names = new Set((c.ports ?? []).map((p) => p.name));
        assert.equal(c.livenessProbe?.httpGet?.path, '/health/live', `${d.metadata.name}: liveness`);
        assert.equal(c.readinessProbe?.httpGet?.path, '/health/ready', `${d.metadata.name}: readiness`);
        for (const probe of [c.startupProbe, c.livenessProbe, c.readinessProbe]) {
          if (probe?.httpGet) assert.ok(names.has(String(probe.httpGet.port)), `${d.metadata.name}: probe port`);
        }
      }
    }
  });

  it('gives every process a valid configuration, its config maps, secrets and volumes', () => {
    for (const d of deployments) {
      const pod = d.spec.template.spec;
      const volumes = new Set((pod.volumes ?? []).map((v) => v.name));
      for (const v of pod.volumes ?? []) if (v.configMap) assert.ok(configs.has(v.configMap.name), v.configMap.name);
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
        for (const from of c.envFrom ?? []) {
          const name = from.configMapRef?.name ?? from.secretRef?.name ?? '';
          assert.ok(configs.has(name), `${d.metadata.name}/${c.name}: ${name} exists`);
        }
        for (const m of c.volumeMounts ?? []) assert.ok(volumes.has(m.name), `${d.metadata.name}: volume ${m.name}`);
        assert.doesNotThrow(() => loadConfig(envOf(c, configs)), `${d.metadata.name}/${c.name}: loadConfig`);
      }
    }
    const [api] = deployment('api').spec.template.spec.containers;
    assert.ok(api);
    assert.doesNotThrow(() => assertApiAccess(loadConfig(envOf(api, configs))), 'the API has a token for HOST 0.0.0.0');
    assert.throws(
      () => loadConfig(envOf(api, shippedSecrets)),
      /ATELIER_API_TOKENS: entry 1 is a change-me placeholder/,
      'the API refuses the shipped placeholder token',
    );
    for (const d of deployments) {
      if (d.metadata.labels?.['app.kubernetes.io/component'] === 'api') continue;
      for (const c of [...d.spec.template.spec.containers, ...(d.spec.template.spec.initContainers ?? [])]) {
        assert.equal(
          envOf(c, configs).ATELIER_API_TOKENS,
          undefined,
          `${d.metadata.name}/${c.name} holds no API token`,
        );
      }
    }
    assert.ok(agentsText, 'the agents file is in a ConfigMap');
    assert.doesNotThrow(() => parseAgentsFile(agentsText, 'atelier-agents ConfigMap'));
  });

  it('runs the profiles of config/agents.yaml under their names', () => {
    type Profiles = { agents: Record<string, unknown> };
    const mounted = (parseYaml(agentsText ?? '') as Profiles).agents;
    const shipped = (parseYaml(readFileSync(resolve(ROOT, 'config/agents.yaml'), 'utf8')) as Profiles).agents;
    const shared = Object.keys(mounted).filter((name) => name in shipped);
    assert.ok(shared.length > 0, 'the ConfigMap has profiles of config/agents.yaml');
    for (const name of shared) assert.deepEqual(mounted[name], shipped[name], `profile ${name}`);
  });

  it('mounts one ReadWriteMany volume of task directories in the API and every agent worker, where compose does', () => {
    const claims = new Map(
      byKind('PersistentVolumeClaim').map((d) => [d.metadata.name, d.spec as { accessModes: string[] }]),
    );
    const workspaces = (component: string) => {
      const pod = deployment(component).spec.template.spec;
      const shared = pod.volumes?.filter((v) => v.persistentVolumeClaim) ?? [];
      assert.equal(shared.length, 1, `${component}: one shared volume`);
      const [volume] = shared as [{ name: string; persistentVolumeClaim: { claimName: string } }];
      const mount = pod.containers[0]?.volumeMounts?.find((m) => m.name === volume.name);
      assert.ok(mount, `${component} mounts ${volume.name}`);
      return { claim: volume.persistentVolumeClaim.claimName, mount };
    };
    const api = workspaces('api');
    const agents = workspaces('agent-worker');
    assert.equal(api.claim, agents.claim, 'the same claim');
    assert.deepEqual(claims.get(api.claim)?.accessModes, ['ReadWriteMany'], `${api.claim}: every pod on any node`);
    assert.equal(api.mount.mountPath, agents.mount.mountPath, 'at the same path, so a task names one directory');
    assert.notEqual(agents.mount.readOnly, true, 'agents write in it');
    for (const service of ['api', 'agent-worker']) {
      assert.ok(
        compose.services[service]?.volumes?.includes(`workspaces:${api.mount.mountPath}`),
        `docker-compose.yml: ${service} mounts the workspaces volume at ${api.mount.mountPath}`,
      );
    }
  });

  it('lets workers drain and record their stop before they are killed, and agents finish before a scale-in stops them', () => {
    const agents = parseAgentsFile(agentsText ?? '', 'atelier-agents');
    const profiles = Object.values(agents.agents);
    const killGrace = Math.max(...profiles.map((p) => p.killGraceSeconds));
    const after = { 'workflow-worker': WORKFLOW_STOP_MARGIN, 'agent-worker': killGrace + STOP_MARGIN_SECONDS };
    for (const [component, margin] of Object.entries(after)) {
      const d = deployment(component);
      const [container] = d.spec.template.spec.containers;
      assert.ok(container);
      const drain = loadConfig(envOf(container, configs)).ATELIER_SHUTDOWN_GRACE_SECONDS;
      const grace = d.spec.template.spec.terminationGracePeriodSeconds ?? 30;
      assert.ok(grace >= drain + margin, `${component}: grace ${grace} s covers the ${drain} s drain and ${margin} s`);
    }
    const apiGrace = deployment('api').spec.template.spec.terminationGracePeriodSeconds ?? 30;
    assert.ok(apiGrace >= API_STOP_DEADLINE_MS / 1000 + 5, `api: grace ${apiGrace} s covers its close`);
    const agentContainer = deployment('agent-worker').spec.template.spec.containers[0] as Container;
    const drain = loadConfig(envOf(agentContainer, configs)).ATELIER_SHUTDOWN_GRACE_SECONDS;
    const longest = Math.max(...profiles.map((p) => p.timeoutSeconds));
    assert.ok(drain >= longest, `the agent drain (${drain} s) lets the longest agent timeout (${longest} s) finish`);
  });

  const scaledObject = (): ScaledObjectDoc => {
    const [scaled] = byKind('ScaledObject') as ScaledObjectDoc[];
    assert.ok(scaled, 'a ScaledObject');
    return scaled;
  };
  /** The environment KEDA resolves `…FromEnv` parameters in: the scale target's named (or first) container. */
  const scaledEnv = (scaled: ScaledObjectDoc): Record<string, string> => {
    const target = deployments.find((d) => d.metadata.name === scaled.spec.scaleTargetRef.name);
    assert.ok(target, `the Deployment ${scaled.spec.scaleTargetRef.name}`);
    const containers = target.spec.template.spec.containers;
    const name = scaled.spec.scaleTargetRef.envSourceContainerName;
    const container = name === undefined ? containers[0] : containers.find((c) => c.name === name);
    assert.ok(container, `the container ${name ?? '(first)'} KEDA reads the environment of`);
    return envOf(container, configs);
  };

  it('scales agent workers with KEDA on the agent task queue, per worker slots', () => {
    const scaled = scaledObject();
    const agent = deployment('agent-worker');
    assert.equal(scaled.spec.scaleTargetRef.name, agent.metadata.name);
    assert.ok(scaled.spec.minReplicaCount >= 1 && scaled.spec.maxReplicaCount > scaled.spec.minReplicaCount);
    const env = envOf(agent.spec.template.spec.containers[0] as Container, configs);
    const config = loadConfig(env);
    const temporal = scaled.spec.triggers.find((t) => t.type === 'temporal');
    assert.ok(temporal, 'a temporal trigger');
    assert.equal(temporal.metadata.taskQueue, config.ATELIER_AGENT_QUEUE);
    assert.equal(temporal.metadata.queueTypes, 'activity');
    // Temporal's address and namespace are the workers' own settings, read from their environment: set
    // once, in config.yaml.
    assert.equal(temporal.metadata.endpoint, undefined, 'no second copy of TEMPORAL_ADDRESS');
    assert.equal(temporal.metadata.endpointFromEnv, 'TEMPORAL_ADDRESS');
    assert.equal(temporal.metadata.namespace, undefined, 'no second copy of TEMPORAL_NAMESPACE');
    assert.equal(temporal.metadata.namespaceFromEnv, 'TEMPORAL_NAMESPACE');
    assert.equal(kedaParam(temporal, 'namespace', scaledEnv(scaled)), config.TEMPORAL_NAMESPACE);
    assert.equal(kedaParam(temporal, 'endpoint', scaledEnv(scaled)), config.TEMPORAL_ADDRESS);
    assert.equal(Number(temporal.metadata.targetQueueSize), config.ATELIER_AGENT_SLOTS);
    const running = scaled.spec.triggers.find((t) => t.type === 'prometheus');
    assert.ok(running?.metadata.query?.includes('atelier_worker_slots_used'), 'running agents keep their pods');
    assert.ok(running?.metadata.query?.includes(config.ATELIER_AGENT_QUEUE));
    assert.equal(Number(running?.metadata.threshold), config.ATELIER_AGENT_SLOTS);
  });

  it('adds running agents and waiting attempts: a full pod with a backlog gets another, and running agents keep theirs', () => {
    const scaled = scaledObject();
    const slots = loadConfig(scaledEnv(scaled)).ATELIER_AGENT_SLOTS;
    assert.ok(typeof slots === 'number', 'a fixed slot count, which the autoscaler divides by');
    // A full worker stops polling, so what waits for it stays in the backlog beside what runs.
    const replicas = (running: number, backlog: number, current: number): number =>
      kedaReplicas(scaled, { prometheus: running, temporal: backlog }, current);
    assert.ok(replicas(slots, slots, 1) >= 2, `${slots} running and ${slots} waiting on one pod: another pod`);
    assert.equal(replicas(3 * slots, 2 * slots, 3), 5, 'every waiting attempt counts, not only those past the running');
    assert.equal(replicas(2 * slots, 0, 2), 2, 'running agents keep their pods');
    assert.equal(replicas(0, 2 * slots, 1), 2, 'waiting attempts get pods');
    assert.equal(replicas(0, 0, 3), scaled.spec.minReplicaCount, 'an idle pool shrinks to its minimum');
    const modifiers = scaled.spec.advanced?.scalingModifiers;
    assert.equal(Number(modifiers?.target), slots, 'one pod per ATELIER_AGENT_SLOTS attempts, running or waiting');
    // KEDA runs no formula while a trigger fails; after failureThreshold failures it asks the fallback for a
    // count, reading the target as an integer. Holding the current count never shrinks the pool under
    // agents whose count it cannot see.
    assert.match(modifiers?.target ?? '', /^[1-9]\d*$/, "the target is an integer, as KEDA's fallback reads it");
    assert.equal(scaled.spec.fallback?.behavior, 'currentReplicas', 'a failing trigger holds the pool as it is');
    assert.ok((scaled.spec.fallback?.failureThreshold ?? 0) >= 1);
  });

  it("leaves the agent workers' replica count to KEDA: applying the manifests does not reset it", () => {
    const target = deployments.find((d) => d.metadata.name === scaledObject().spec.scaleTargetRef.name);
    assert.ok(target);
    assert.equal(target.spec.replicas, undefined, `${target.metadata.name} sets no spec.replicas`);
  });

  it("queries, for the autoscaler, only the kustomization's namespace", () => {
    const { namespace } = parseYaml(readFileSync(join(K8S_DIR, 'kustomization.yaml'), 'utf8')) as {
      namespace: string;
    };
    const query = scaledObject().spec.triggers.find((t) => t.type === 'prometheus')?.metadata.query ?? '';
    const selectors = [...query.matchAll(/\{([^}]*)\}/g)].map((m) => m[1] ?? '');
    assert.ok(selectors.length > 0, `the query selects its series: ${query}`);
    for (const s of selectors) assert.match(s, new RegExp(`(^|,)\\s*namespace="${namespace}"`), `{${s}}`);
  });

  it('gives the API the memory its most log followers and downloads hold', () => {
    const [api] = deployment('api').spec.template.spec.containers;
    assert.ok(api?.resources?.limits?.memory, 'the API has a memory limit');
    const config = loadConfig(envOf(api, configs));
    // Each open follower or download holds about a page; twice that, for the page as JavaScript strings
    // (up to two bytes a character) and the frames written from it. The baseline is the API's own: its
    // peak RSS in docs/benchmarks.md is 242 MB.
    const baseline = 256 * 2 ** 20;
    const open = config.ATELIER_LOG_FOLLOWERS_MAX + config.ATELIER_LOG_DOWNLOADS_MAX;
    const needed = open * LOG_PAGE.bytes * 2 + baseline;
    const limit = bytesOf(api.resources.limits.memory);
    assert.ok(needed <= limit, `${open} followers and downloads need ${needed / 2 ** 20} MiB of ${limit / 2 ** 20}`);
  });

  it('keeps agent worktrees on a volume of the pod, which outlives a restart of its container', () => {
    const pod = deployment('agent-worker').spec.template.spec;
    const [container] = pod.containers;
    assert.ok(container);
    const root = loadConfig(envOf(container, configs)).ATELIER_WORKTREE_ROOT;
    assert.ok(root, 'ATELIER_WORKTREE_ROOT is set');
    const mount = container.volumeMounts?.find((m) => m.mountPath === root);
    assert.ok(mount, `a volume is mounted at ${root}`);
    const volume = pod.volumes?.find((v) => v.name === mount.name);
    assert.ok(volume?.emptyDir?.sizeLimit, `${mount.name} is an emptyDir with a size limit`);
  });

  it('scrapes, through its PodMonitor, the port whose metrics the autoscaler queries', () => {
    const [monitor] = byKind('PodMonitor') as (Doc & {
      spec: {
        selector: { matchLabels: Record<string, string> };
        podMetricsEndpoints: { port: string; path: string }[];
      };
    })[];
    assert.ok(monitor, 'a PodMonitor');
    const scraped = (component: string): boolean => {
      const d = deployment(component);
      if (!selects(monitor.spec.selector.matchLabels, d.spec.template.metadata.labels)) return false;
      const ports = d.spec.template.spec.containers.flatMap((c) => c.ports ?? []);
      const path = d.spec.template.metadata.annotations?.['prometheus.io/path'];
      return monitor.spec.podMetricsEndpoints.some((e) => ports.some((p) => p.name === e.port) && e.path === path);
    };
    for (const component of ['api', 'workflow-worker', 'agent-worker']) assert.ok(scraped(component), component);
    const [scaled] = byKind('ScaledObject') as (Doc & {
      spec: { triggers: { type: string; metadata: Record<string, string> }[] };
    })[];
    const running = scaled?.spec.triggers.find((t) => t.type === 'prometheus');
    assert.equal(running?.metadata.ignoreNullValues, 'false', 'no series is an error, which stops scale-in, not 0');
  });

  it('exposes worker metrics on the port their settings and scrape annotations name', () => {
    const cases = [
      ['workflow-worker', 'ATELIER_WORKFLOW_WORKER_METRICS_PORT'],
      ['agent-worker', 'ATELIER_AGENT_WORKER_METRICS_PORT'],
      ['api', 'PORT'],
    ] as const;
    for (const [component, setting] of cases) {
      const d = deployment(component);
      const container = d.spec.template.spec.containers[0] as Container;
      const port = loadConfig(envOf(container, configs))[setting];
      assert.ok(
        (container.ports ?? []).some((p) => p.containerPort === port),
        `${component}: port ${port} declared`,
      );
      assert.equal(d.spec.template.metadata.annotations?.['prometheus.io/port'], String(port));
      assert.equal(d.spec.template.metadata.annotations?.['prometheus.io/path'], '/metrics');
      assert.equal(loadConfig(envOf(container, configs)).HOST, '0.0.0.0', `${component} listens on the pod IP`);
    }
  });
});

describe('docker-compose.yml', () => {
  it('is valid against the Compose specification schema', () => {
    // dclint ships the Compose specification's JSON schema; its package exports do not list it.
    const schemaPath = join(dirname(require.resolve('dclint/package.json')), 'schemas/compose.schema.json');
    // It is draft-07, Ajv's own default; its `$schema` spells the draft's URL in a form Ajv does not know.
    const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;
    delete schema.$schema;
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validate = ajv.compile(schema);
    const valid = validate(compose);
    assert.ok(valid, JSON.stringify(validate.errors, null, 2));
  });

  it('requires a token for the API, which listens beyond loopback inside its container', () => {
    const api = compose.services.api?.environment;
    assert.equal(api?.HOST, '0.0.0.0');
    assert.match(String(api?.ATELIER_API_TOKENS), /^\$\{ATELIER_API_TOKENS:\?[^}]+\}$/);
    assert.equal(api?.ATELIER_API_AUTH, undefined, 'no opt-out');
  });

  it('gives each worker a stop period that covers its drain and final writes, and the API a health check', () => {
    // A duration, or `${VAR:-default}` as compose reads it when VAR is not set.
    const seconds = (d: string | undefined): number => {
      const m = /^(?:\$\{[A-Z_]+:-)?(\d+)(s|m)\}?$/.exec(d ?? '10s');
      assert.ok(m, `a duration: ${d}`);
      return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
    };
    const shipped = parseAgentsFile(readFileSync(resolve(ROOT, 'config/agents.yaml'), 'utf8'), 'config/agents.yaml');
    const killGrace = Math.max(...Object.values(shipped.agents).map((p) => p.killGraceSeconds));
    const after = { 'workflow-worker': WORKFLOW_STOP_MARGIN, 'agent-worker': killGrace + STOP_MARGIN_SECONDS };
    for (const [name, margin] of Object.entries(after)) {
      const service = compose.services[name];
      assert.ok(service, name);
      const drain = Number(/\d+/.exec(String(service.environment?.ATELIER_SHUTDOWN_GRACE_SECONDS ?? '30'))?.[0]);
      const grace = seconds(service.stop_grace_period);
      assert.ok(
        grace >= drain + margin,
        `${name}: stop_grace_period ${grace} s covers the ${drain} s drain and ${margin} s`,
      );
    }
    const apiGrace = seconds(compose.services.api?.stop_grace_period);
    assert.ok(apiGrace >= API_STOP_DEADLINE_MS / 1000 + 5, `api: stop_grace_period ${apiGrace} s covers its close`);
    assert.ok(compose.services.api?.healthcheck?.test.join(' ').includes('/health/live'));
  });

  it("gives its Temporal server the dev server's priority matcher and transfer-queue read rate", () => {
    const content = compose.configs?.['temporal-dynamic-config']?.content;
    assert.ok(content, 'the temporal-dynamic-config config has content');
    const dynamic = parseYaml(content) as Record<string, { value: unknown }[]>;
    for (const key of ['matching.useNewMatcher', 'history.transferProcessorMaxPollRPS']) {
      const setting = DEV_SERVER_DYNAMIC_CONFIG.find((v) => v.startsWith(`${key}=`));
      assert.ok(setting, `npm run up sets ${key}`);
      assert.equal(String(dynamic[key]?.[0]?.value), setting.slice(key.length + 1), key);
    }
  });
});

describe('infra/grafana/atelier.json', () => {
  const dashboard = JSON.parse(readFileSync(resolve(ROOT, 'infra/grafana/atelier.json'), 'utf8')) as {
    uid: string;
    title: string;
    panels: { type: string; title: string; targets?: { expr: string }[]; gridPos: object }[];
  };

  /** Every metric name Atelier may register: each quoted `'atelier_…'` in the sources. */
  const registered = (): Set<string> => {
    const names = new Set<string>();
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith('.ts')) {
          for (const m of readFileSync(path, 'utf8').matchAll(/'(atelier_\w+)'/g)) names.add(m[1] as string);
        }
      }
    };
    walk(resolve(ROOT, 'src'));
    return names;
  };

  it('queries only metrics Atelier serves', () => {
    assert.equal(dashboard.uid, 'atelier-overview');
    const known = registered();
    assert.ok(known.has('atelier_tasks') && known.has('atelier_agent_run_duration_seconds'), [...known].join(' '));
    const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    assert.ok(queries.length >= 20, `${queries.length} queries`);
    for (const expr of queries) {
      for (const m of expr.matchAll(/\b(atelier_\w+?)(_bucket|_count|_sum)?\b/g)) {
        assert.ok(known.has(m[1] as string), `${m[1]} (in ${expr}) is a metric Atelier registers`);
      }
    }
    assert.ok(
      queries.some((q) => q.includes('temporal_')),
      'the Temporal SDK metrics are charted too',
    );
  });
});
