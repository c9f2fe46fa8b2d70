// Offline validation of k8s/ and of what scripts/k8s-render prints.
//
// 1. Every YAML document is checked against the official Kubernetes schemas (kubernetes-models),
//    plus an unknown-field walk (the schemas accept typos such as `replcas`).
// 2. Our own rules (lib/rules.mjs) run over each set of objects that is applied together.
// 3. The render script is run with default and non-default HPA values and with bad values.
// 4. Negative checks: each rule is fed a deliberately broken copy and must reject it.
//
// One line per check; the last line is "N passed, M failed"; exit status 1 if anything failed.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { ALLOWED_KINDS, RULES } from './lib/rules.mjs';
import { unknownFields } from './lib/fields.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..', '..');
const K8S = path.join(ROOT, 'k8s');
const RENDER = path.join(ROOT, 'scripts', 'k8s-render');

let passed = 0;
let failed = 0;

function report(ok, label, problems = []) {
  if (ok) {
    passed++;
    console.log(`ok   ${label}`);
  } else {
    failed++;
    console.log(`FAIL ${label}: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (+${problems.length - 5} more)` : ''}`);
  }
}

// check(label, fn): fn returns a list of problems; empty means pass.
function check(label, fn) {
  let problems;
  try {
    problems = fn() ?? [];
  } catch (e) {
    problems = [`error: ${e.message}`];
  }
  report(problems.length === 0, label, problems);
}

// rejects(label, fn): fn returns a list of problems; the check passes only if there is one.
function rejects(label, fn) {
  let problems;
  try {
    problems = fn() ?? [];
  } catch (e) {
    problems = [`error: ${e.message}`];
  }
  if (problems.length > 0) {
    passed++;
    console.log(`ok   rejects ${label} (${problems[0]})`);
  } else {
    failed++;
    console.log(`FAIL rejects ${label}: the broken copy was accepted`);
  }
}

// ---- schemas ---------------------------------------------------------------------------------

const MODELS = {};
for (const [apiVersion, kinds] of Object.entries(ALLOWED_KINDS)) {
  for (const kind of kinds) {
    const mod = await import(`kubernetes-models/${apiVersion}/${kind}`);
    MODELS[`${apiVersion}/${kind}`] = mod[kind];
  }
}

function schemaProblems(obj) {
  if (!obj || typeof obj !== 'object') return ['document is not a mapping'];
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!Model) return [`${obj.apiVersion} ${obj.kind} is not an allowed apiVersion/kind`];
  if (!obj.metadata?.name) return ['metadata.name is missing'];
  try {
    new Model(obj).validate();
    return [];
  } catch (e) {
    return [e.message];
  }
}

function fieldProblems(obj) {
  return unknownFields(obj).map((f) => `unknown field ${f}`);
}

// Parses a multi-document YAML text the way kubectl does (YAML 1.1).
function parseDocs(text) {
  const objs = [];
  const errors = [];
  for (const doc of YAML.parseAllDocuments(text, { version: '1.1' })) {
    for (const e of doc.errors) errors.push(e.message.split('\n')[0]);
    const obj = doc.toJS();
    if (obj !== null && obj !== undefined) objs.push(obj);
  }
  return { objs, errors };
}

const label = (o) => `${o?.kind}/${o?.metadata?.name}`;

function ruleProblems(rule, objs, ctx) {
  return RULES.find((r) => r.name === rule).check(objs, ctx);
}

function checkRules(setName, objs, ctx) {
  for (const rule of RULES) check(`rule ${rule.name} (${setName}): ${rule.describe}`, () => rule.check(objs, ctx));
}

// ---- k8s/ as it stands --------------------------------------------------------------------------

const manifestFiles = readdirSync(K8S)
  .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
  .sort();
const manifests = [];
for (const f of manifestFiles) {
  const { objs, errors } = parseDocs(readFileSync(path.join(K8S, f), 'utf8'));
  check(`parse k8s/${f} (${objs.length} document${objs.length === 1 ? "" : "s"})`, () => (objs.length ? errors : ['no documents', ...errors]));
  for (const o of objs) {
    check(`schema k8s/${f} ${label(o)}`, () => schemaProblems(o));
    check(`fields k8s/${f} ${label(o)}`, () => fieldProblems(o));
    manifests.push(o);
  }
}

const kustomization = YAML.parse(readFileSync(path.join(K8S, 'kustomization.yaml'), 'utf8'), { version: '1.1' });
check('k8s/kustomization.yaml lists every manifest in k8s/ exactly once', () => {
  const listed = [...(kustomization.resources ?? [])].sort();
  const p = [];
  if (kustomization.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || kustomization.kind !== 'Kustomization') p.push('not a Kustomization');
  if (new Set(listed).size !== listed.length) p.push('a resource is listed twice');
  for (const f of manifestFiles) if (!listed.includes(f)) p.push(`${f} is not listed`);
  for (const f of listed) if (!manifestFiles.includes(f)) p.push(`${f} is listed but missing`);
  return p;
});
const generated = (kustomization.secretGenerator ?? []).map((g) => g.name);
check('k8s/kustomization.yaml generates Secret spark-executor-tenants from a JSON tenants file', () => {
  const g = (kustomization.secretGenerator ?? []).find((x) => x.name === 'spark-executor-tenants');
  if (!g) return ['no secretGenerator spark-executor-tenants'];
  const entry = (g.files ?? []).map((s) => s.split('=')).find(([key]) => key === 'tenants.json');
  if (!entry) return ['no tenants.json=FILE entry'];
  const file = path.join(K8S, entry[1] ?? entry[0]);
  if (!existsSync(file)) return [`${file} does not exist`];
  const data = JSON.parse(readFileSync(file, 'utf8'));
  return data && typeof data === 'object' && !Array.isArray(data) ? [] : ['tenants file is not a JSON object'];
});
checkRules('k8s/', manifests, { generatedSecrets: generated });

// ---- scripts/k8s-render ---------------------------------------------------------------------------

function render(env = {}) {
  const e = { ...process.env };
  for (const k of ['HPA_MIN_REPLICAS', 'HPA_MAX_REPLICAS', 'HPA_TARGET_CPU', 'EXECUTOR_IMAGE', 'TENANTS_FILE']) delete e[k];
  return spawnSync('bash', [RENDER], { env: { ...e, ...env }, encoding: 'utf8' });
}

const find = (objs, kind, name) => objs.find((o) => o?.kind === kind && o.metadata?.name === name);
const hpaOf = (objs) => find(objs, 'HorizontalPodAutoscaler', 'spark-executor-hpa');
const cpuTarget = (hpa) => hpa?.spec?.metrics?.find((m) => m.resource?.name === 'cpu')?.resource?.target?.averageUtilization;

function checkRendered(setName, env, want) {
  const r = render(env);
  check(`render ${setName} exits 0 with nothing on stderr`, () =>
    r.status === 0 && !r.stderr ? [] : [`status ${r.status}: ${r.stderr.trim()}`]);
  if (r.status !== 0) return;
  const { objs, errors } = parseDocs(r.stdout);
  check(`render ${setName}: output parses (${objs.length} documents)`, () => errors);
  check(`render ${setName}: every document passes the schemas`, () =>
    objs.flatMap((o) => schemaProblems(o).map((m) => `${label(o)}: ${m}`)));
  check(`render ${setName}: no unknown fields`, () =>
    objs.flatMap((o) => fieldProblems(o).map((m) => `${label(o)}: ${m}`)));
  check(`render ${setName}: same objects as k8s/ plus the tenants Secret`, () => {
    const got = objs.filter((o) => o.kind !== 'Secret').map(label).sort();
    const expected = manifests.map(label).sort();
    return JSON.stringify(got) === JSON.stringify(expected) ? [] : [`got ${got.join(',')}`];
  });
  check(`render ${setName}: HPA ${want.min}-${want.max}, CPU ${want.cpu} %`, () => {
    const h = hpaOf(objs);
    const got = [h?.spec?.minReplicas, h?.spec?.maxReplicas, cpuTarget(h)];
    return JSON.stringify(got) === JSON.stringify([want.min, want.max, want.cpu]) ? [] : [`got ${got.join(' ')}`];
  });
  check(`render ${setName}: Secret holds the tenants file and the Deployment mounts it`, () => {
    const secrets = objs.filter((o) => o.kind === 'Secret');
    if (secrets.length !== 1) return [`${secrets.length} Secrets`];
    const s = secrets[0];
    const p = [];
    const file = env.TENANTS_FILE ?? path.join(K8S, 'tenants.example.json');
    const content = Buffer.from(s.data?.['tenants.json'] ?? '', 'base64').toString('utf8');
    if (content !== readFileSync(file, 'utf8')) p.push('Secret content differs from the tenants file');
    if (!/^spark-executor-tenants-[0-9a-f]{10}$/.test(s.metadata.name)) p.push(`Secret name ${s.metadata.name}`);
    const vol = find(objs, 'Deployment', 'spark-executor')?.spec?.template?.spec?.volumes?.find((v) => v.secret);
    if (vol?.secret?.secretName !== s.metadata.name) p.push(`Deployment mounts ${vol?.secret?.secretName}`);
    return p;
  });
  checkRules(`render ${setName}`, objs, {});
  return objs;
}

const rendered = checkRendered('defaults', {}, { min: 2, max: 12, cpu: 70 });
checkRendered('HPA_MIN_REPLICAS=3 HPA_MAX_REPLICAS=20 HPA_TARGET_CPU=60',
  { HPA_MIN_REPLICAS: '3', HPA_MAX_REPLICAS: '20', HPA_TARGET_CPU: '60' }, { min: 3, max: 20, cpu: 60 });
check('render EXECUTOR_IMAGE=registry.example.com/team/spark-executor:v0.4.0 sets the executor image', () => {
  const r = render({ EXECUTOR_IMAGE: 'registry.example.com/team/spark-executor:v0.4.0' });
  const { objs } = parseDocs(r.stdout);
  const image = find(objs, 'Deployment', 'spark-executor')?.spec?.template?.spec?.containers?.[0]?.image;
  return image === 'registry.example.com/team/spark-executor:v0.4.0' ? [] : [`image ${image}, status ${r.status}`];
});

const badValues = [
  [{ HPA_MIN_REPLICAS: '0' }, 'HPA_MIN_REPLICAS'],
  [{ HPA_MIN_REPLICAS: '' }, 'HPA_MIN_REPLICAS'],
  [{ HPA_MAX_REPLICAS: '1' }, 'HPA_MAX_REPLICAS'],
  [{ HPA_MIN_REPLICAS: '5', HPA_MAX_REPLICAS: '4' }, 'HPA_MAX_REPLICAS'],
  [{ HPA_MAX_REPLICAS: 'twelve' }, 'HPA_MAX_REPLICAS'],
  [{ HPA_TARGET_CPU: 'abc' }, 'HPA_TARGET_CPU'],
  [{ HPA_TARGET_CPU: '101' }, 'HPA_TARGET_CPU'],
  [{ HPA_TARGET_CPU: '-5' }, 'HPA_TARGET_CPU'],
  [{ EXECUTOR_IMAGE: 'registry.example.com/spark-executor:latest' }, 'EXECUTOR_IMAGE'],
  [{ TENANTS_FILE: '/nonexistent/tenants.json' }, 'TENANTS_FILE'],
];
for (const [env, variable] of badValues) {
  const shown = Object.entries(env).map(([k, v]) => `${k}=${v === '' ? "''" : v}`).join(' ');
  check(`render refuses ${shown} with one line naming ${variable}`, () => {
    const r = render(env);
    const lines = r.stderr.split('\n').filter(Boolean);
    const p = [];
    if (r.status !== 2) p.push(`status ${r.status}`);
    if (r.stdout) p.push('printed manifests anyway');
    if (lines.length !== 1 || !lines[0].includes(variable)) p.push(`stderr: ${JSON.stringify(r.stderr)}`);
    return p;
  });
}
check('render --help documents HPA_MIN_REPLICAS, HPA_MAX_REPLICAS and HPA_TARGET_CPU', () => {
  const r = spawnSync('bash', [RENDER, '--help'], { encoding: 'utf8' });
  const missing = ['HPA_MIN_REPLICAS', 'HPA_MAX_REPLICAS', 'HPA_TARGET_CPU'].filter((v) => !r.stdout.includes(v));
  return r.status === 0 && missing.length === 0 ? [] : [`status ${r.status}, missing ${missing.join(',')}`];
});

// ---- negative checks: a broken copy must be rejected -------------------------------------------

const base = rendered ?? manifests;
function broken(fn) {
  const copy = structuredClone(base);
  fn(copy);
  return copy;
}
const exec = (objs) => find(objs, 'Deployment', 'spark-executor');
const execC = (objs) => exec(objs).spec.template.spec.containers.find((c) => c.name === 'executor');
const redis = (objs) => find(objs, 'Deployment', 'spark-redis');
const redisC = (objs) => redis(objs).spec.template.spec.containers[0];
const pdb = (objs) => find(objs, 'PodDisruptionBudget', 'spark-executor-pdb');
const svc = (objs) => find(objs, 'Service', 'spark-executor');

const schemaOf = (objs, pick) => schemaProblems(pick(objs));
const negatives = [
  ['schema: Deployment replicas "two"', () => schemaOf(broken((o) => { redis(o).spec.replicas = 'two'; }), redis)],
  ['schema: cpu request "lots"', () => schemaOf(broken((o) => { execC(o).resources.requests.cpu = 'lots'; }), exec)],
  ['schema: PDB unhealthyPodEvictionPolicy "Sometimes"', () => schemaOf(broken((o) => { pdb(o).spec.unhealthyPodEvictionPolicy = 'Sometimes'; }), pdb)],
  ['schema: Service port "http"', () => schemaOf(broken((o) => { svc(o).spec.ports[0].port = 'http'; }), svc)],
  ['fields: typo spec.replcas', () => fieldProblems(exec(broken((o) => { exec(o).spec.replcas = 2; })))],
  ['fields: typo livenesProbe', () => fieldProblems(exec(broken((o) => { const c = execC(o); c.livenesProbe = c.livenessProbe; })))],
  ['api-versions: autoscaling/v2beta2 HPA', () => ruleProblems('api-versions', broken((o) => { hpaOf(o).apiVersion = 'autoscaling/v2beta2'; }))],
  ['hpa-min-max: minReplicas 13 > maxReplicas 12', () => ruleProblems('hpa-min-max', broken((o) => { hpaOf(o).spec.minReplicas = 13; }))],
  ['hpa-min-max: minReplicas 0', () => ruleProblems('hpa-min-max', broken((o) => { hpaOf(o).spec.minReplicas = 0; }))],
  ['hpa-behavior: scaleDown window 3601 s', () => ruleProblems('hpa-behavior', broken((o) => { hpaOf(o).spec.behavior.scaleDown.stabilizationWindowSeconds = 3601; }))],
  ['hpa-behavior: scaleUp window -1 s', () => ruleProblems('hpa-behavior', broken((o) => { hpaOf(o).spec.behavior.scaleUp.stabilizationWindowSeconds = -1; }))],
  ['hpa-behavior: policy type "Percents"', () => ruleProblems('hpa-behavior', broken((o) => { hpaOf(o).spec.behavior.scaleUp.policies[0].type = 'Percents'; }))],
  ['hpa-target: Deployment sets replicas', () => ruleProblems('hpa-target', broken((o) => { exec(o).spec.replicas = 3; }))],
  ['hpa-target: HPA targets a missing Deployment', () => ruleProblems('hpa-target', broken((o) => { hpaOf(o).spec.scaleTargetRef.name = 'spark-executr'; }))],
  ['pdb-one-of: both minAvailable and maxUnavailable', () => ruleProblems('pdb-one-of', broken((o) => { pdb(o).spec.minAvailable = 1; }))],
  ['pdb-one-of: neither minAvailable nor maxUnavailable', () => ruleProblems('pdb-one-of', broken((o) => { delete pdb(o).spec.maxUnavailable; }))],
  ['container-resources: redis without limits', () => ruleProblems('container-resources', broken((o) => { delete redisC(o).resources.limits; }))],
  ['container-resources: memory request above limit', () => ruleProblems('container-resources', broken((o) => { execC(o).resources.requests.memory = '2Gi'; }))],
  ['container-probes: redis without readinessProbe', () => ruleProblems('container-probes', broken((o) => { delete redisC(o).readinessProbe; }))],
  ['container-probes: executor without livenessProbe', () => ruleProblems('container-probes', broken((o) => { delete execC(o).livenessProbe; }))],
  ['container-security: readOnlyRootFilesystem false', () => ruleProblems('container-security', broken((o) => { execC(o).securityContext.readOnlyRootFilesystem = false; }))],
  ['container-security: capabilities not dropped', () => ruleProblems('container-security', broken((o) => { redisC(o).securityContext.capabilities.drop = []; }))],
  ['container-security: runAsNonRoot unset', () => ruleProblems('container-security', broken((o) => { delete execC(o).securityContext.runAsNonRoot; delete exec(o).spec.template.spec.securityContext.runAsNonRoot; }))],
  ['container-security: seccomp Unconfined', () => ruleProblems('container-security', broken((o) => { execC(o).securityContext.seccompProfile.type = 'Unconfined'; }))],
  ['container-security: allowPrivilegeEscalation true', () => ruleProblems('container-security', broken((o) => { redisC(o).securityContext.allowPrivilegeEscalation = true; }))],
  ['container-security: runAsUser 0', () => ruleProblems('container-security', broken((o) => { execC(o).securityContext.runAsUser = 0; }))],
  ['image-pinned: executor image :latest', () => ruleProblems('image-pinned', broken((o) => { execC(o).image = 'registry.example.com/spark-executor:latest'; }))],
  ['image-pinned: redis image without a tag', () => ruleProblems('image-pinned', broken((o) => { redisC(o).image = 'redis'; }))],
  ['service-selectors: Service selects nothing', () => ruleProblems('service-selectors', broken((o) => { svc(o).spec.selector = { app: 'nothing' }; }))],
  ['service-selectors: unknown targetPort', () => ruleProblems('service-selectors', broken((o) => { svc(o).spec.ports[0].targetPort = 'metrics'; }))],
  ['secret-volumes: Secret not deployed', () => ruleProblems('secret-volumes', broken((o) => { exec(o).spec.template.spec.volumes.find((v) => v.secret).secret.secretName = 'missing'; }), {})],
  ['executor-contract: grace 20 s < preStop + delay + timeout', () => ruleProblems('executor-contract', broken((o) => { exec(o).spec.template.spec.terminationGracePeriodSeconds = 20; }))],
  ['executor-contract: preStop exec sleep (no shell in the image)', () => ruleProblems('executor-contract', broken((o) => { execC(o).lifecycle.preStop = { exec: { command: ['sh', '-c', 'sleep 5'] } }; }))],
  ['executor-contract: startupProbe on /readyz', () => ruleProblems('executor-contract', broken((o) => { execC(o).startupProbe.httpGet.path = '/readyz'; }))],
  ['executor-contract: livenessProbe on the tenant port', () => ruleProblems('executor-contract', broken((o) => { execC(o).livenessProbe.httpGet.port = 4001; }))],
  ['executor-contract: REDIS_URL on localhost', () => ruleProblems('executor-contract', broken((o) => { execC(o).env.find((e) => e.name === 'REDIS_URL').value = 'redis://localhost:6379/0'; }))],
  ['executor-contract: no spread over nodes', () => ruleProblems('executor-contract', broken((o) => { delete exec(o).spec.template.spec.topologySpreadConstraints; }))],
  ['executor-contract: PDB maxUnavailable 2', () => ruleProblems('executor-contract', broken((o) => { pdb(o).spec.maxUnavailable = 2; }))],
];
for (const [name, fn] of negatives) rejects(name, fn);

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
