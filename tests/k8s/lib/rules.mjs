// Our own rules for the manifests, on top of the official schemas. Each rule takes the list of
// objects that are applied together and returns a list of problems (empty = pass).

// Only these apiVersion/kind pairs may appear: current, served APIs (no autoscaling/v2beta2,
// policy/v1beta1, extensions/*).
export const ALLOWED_KINDS = {
  v1: ['Service', 'Secret', 'ConfigMap', 'ServiceAccount'],
  'apps/v1': ['Deployment', 'StatefulSet'],
  'autoscaling/v2': ['HorizontalPodAutoscaler'],
  'policy/v1': ['PodDisruptionBudget'],
  'networking.k8s.io/v1': ['NetworkPolicy'],
};

const MAX_STABILIZATION_WINDOW = 3600;
const HPA_POLICY_TYPES = ['Pods', 'Percent'];

const name = (o) => `${o.kind}/${o.metadata?.name ?? '?'}`;
const ofKind = (objs, kind) => objs.filter((o) => o?.kind === kind);
const workloads = (objs) => objs.filter((o) => o?.kind === 'Deployment' || o?.kind === 'StatefulSet');

function podSpecs(objs) {
  return workloads(objs).map((w) => ({ owner: w, pod: w.spec?.template?.spec ?? {} }));
}

function containersOf(objs) {
  const out = [];
  for (const { owner, pod } of podSpecs(objs)) {
    for (const c of [...(pod.initContainers ?? []), ...(pod.containers ?? [])]) {
      out.push({ owner, pod, c, where: `${name(owner)} container ${c.name}` });
    }
  }
  return out;
}

// Kubernetes quantity -> number (cores or bytes). Returns NaN when it cannot be read.
export function quantity(q) {
  if (typeof q === 'number') return q;
  const m = /^([+-]?[0-9.]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|e[+-]?[0-9]+)?$/.exec(String(q));
  if (!m) return NaN;
  const units = {
    m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
    Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  };
  const n = Number(m[1]);
  if (!m[2]) return n;
  if (m[2].startsWith('e')) return n * 10 ** Number(m[2].slice(1));
  return n * units[m[2]];
}

function envValue(c, key) {
  return (c.env ?? []).find((e) => e.name === key)?.value;
}

// Port number of a probe or Service target, resolving named container ports.
function resolvePort(c, port) {
  if (typeof port === 'number') return port;
  return (c.ports ?? []).find((p) => p.name === port)?.containerPort;
}

function selectorMatches(selector, labels) {
  const want = selector?.matchLabels ?? selector ?? {};
  if (Object.keys(want).length === 0) return false;
  return Object.entries(want).every(([k, v]) => labels?.[k] === v);
}

export const RULES = [
  {
    name: 'api-versions',
    describe: 'only current, served apiVersion/kind pairs',
    check(objs) {
      return objs
        .filter((o) => !(ALLOWED_KINDS[o?.apiVersion] ?? []).includes(o?.kind))
        .map((o) => `${o?.apiVersion} ${o?.kind} (${o?.metadata?.name}) is not on the allow-list`);
    },
  },
  {
    name: 'hpa-min-max',
    describe: 'HPA 1 <= minReplicas <= maxReplicas',
    check(objs) {
      const p = [];
      for (const h of ofKind(objs, 'HorizontalPodAutoscaler')) {
        const min = h.spec?.minReplicas ?? 1;
        const max = h.spec?.maxReplicas;
        if (!Number.isInteger(min) || min < 1) p.push(`${name(h)}: minReplicas ${min} is below 1`);
        if (!Number.isInteger(max)) p.push(`${name(h)}: maxReplicas missing`);
        else if (min > max) p.push(`${name(h)}: minReplicas ${min} > maxReplicas ${max}`);
      }
      return p;
    },
  },
  {
    name: 'hpa-behavior',
    describe: `HPA stabilization windows within 0..${MAX_STABILIZATION_WINDOW} s, policy types ${HPA_POLICY_TYPES.join('/')}`,
    check(objs) {
      const p = [];
      for (const h of ofKind(objs, 'HorizontalPodAutoscaler')) {
        for (const dir of ['scaleUp', 'scaleDown']) {
          const rules = h.spec?.behavior?.[dir];
          if (!rules) continue;
          const w = rules.stabilizationWindowSeconds;
          if (w !== undefined && !(Number.isInteger(w) && w >= 0 && w <= MAX_STABILIZATION_WINDOW)) {
            p.push(`${name(h)}: ${dir}.stabilizationWindowSeconds ${w} is outside 0..${MAX_STABILIZATION_WINDOW}`);
          }
          for (const pol of rules.policies ?? []) {
            if (!HPA_POLICY_TYPES.includes(pol.type)) p.push(`${name(h)}: ${dir} policy type ${pol.type}`);
            if (!(pol.periodSeconds > 0 && pol.periodSeconds <= 1800)) {
              p.push(`${name(h)}: ${dir} policy periodSeconds ${pol.periodSeconds} is outside 1..1800`);
            }
            if (!(pol.value > 0)) p.push(`${name(h)}: ${dir} policy value ${pol.value} is not positive`);
          }
        }
      }
      return p;
    },
  },
  {
    name: 'hpa-target',
    describe: 'every HPA targets a Deployment here, which leaves spec.replicas unset',
    check(objs) {
      const p = [];
      for (const h of ofKind(objs, 'HorizontalPodAutoscaler')) {
        const ref = h.spec?.scaleTargetRef ?? {};
        const target = objs.find((o) => o?.kind === ref.kind && o?.metadata?.name === ref.name);
        if (!target) p.push(`${name(h)}: target ${ref.kind}/${ref.name} is not in the manifests`);
        else if (target.spec?.replicas !== undefined) {
          p.push(`${name(target)} sets spec.replicas (${target.spec.replicas}) although ${name(h)} owns it`);
        }
      }
      return p;
    },
  },
  {
    name: 'pdb-one-of',
    describe: 'every PDB sets exactly one of minAvailable/maxUnavailable and selects pods here',
    check(objs) {
      const p = [];
      for (const b of ofKind(objs, 'PodDisruptionBudget')) {
        const set = ['minAvailable', 'maxUnavailable'].filter((k) => b.spec?.[k] !== undefined);
        if (set.length !== 1) p.push(`${name(b)} sets ${set.length ? set.join(' and ') : 'neither'}`);
        if (!workloads(objs).some((w) => selectorMatches(b.spec?.selector, w.spec?.template?.metadata?.labels))) {
          p.push(`${name(b)} selects no pods of these manifests`);
        }
      }
      return p;
    },
  },
  {
    name: 'container-resources',
    describe: 'every container has CPU and memory requests and limits, requests <= limits',
    check(objs) {
      const p = [];
      for (const { c, where } of containersOf(objs)) {
        for (const kind of ['requests', 'limits']) {
          for (const res of ['cpu', 'memory']) {
            const v = c.resources?.[kind]?.[res];
            if (v === undefined) p.push(`${where}: no ${kind}.${res}`);
            else if (Number.isNaN(quantity(v))) p.push(`${where}: ${kind}.${res} '${v}' is not a quantity`);
          }
        }
        for (const res of ['cpu', 'memory']) {
          const r = quantity(c.resources?.requests?.[res]);
          const l = quantity(c.resources?.limits?.[res]);
          if (r > l) p.push(`${where}: requests.${res} is above limits.${res}`);
        }
      }
      return p;
    },
  },
  {
    name: 'container-probes',
    describe: 'every container has readiness and liveness probes',
    check(objs) {
      const p = [];
      for (const { c, where } of containersOf(objs)) {
        for (const probe of ['readinessProbe', 'livenessProbe']) {
          const pr = c[probe];
          if (!pr) p.push(`${where}: no ${probe}`);
          else if (!pr.httpGet && !pr.tcpSocket && !pr.exec && !pr.grpc) p.push(`${where}: ${probe} has no handler`);
        }
      }
      return p;
    },
  },
  {
    name: 'container-security',
    describe: 'non-root, no privilege escalation, read-only root, drop ALL, RuntimeDefault seccomp',
    check(objs) {
      const p = [];
      for (const { pod, c, where } of containersOf(objs)) {
        const sc = c.securityContext ?? {};
        const psc = pod.securityContext ?? {};
        if ((sc.runAsNonRoot ?? psc.runAsNonRoot) !== true) p.push(`${where}: runAsNonRoot is not true`);
        const uid = sc.runAsUser ?? psc.runAsUser;
        if (uid === 0) p.push(`${where}: runs as uid 0`);
        if (sc.allowPrivilegeEscalation !== false) p.push(`${where}: allowPrivilegeEscalation is not false`);
        if (sc.readOnlyRootFilesystem !== true) p.push(`${where}: readOnlyRootFilesystem is not true`);
        if (sc.privileged === true) p.push(`${where}: privileged`);
        if (!(sc.capabilities?.drop ?? []).includes('ALL')) p.push(`${where}: capabilities.drop lacks ALL`);
        if ((sc.capabilities?.add ?? []).length) p.push(`${where}: adds capabilities`);
        const seccomp = sc.seccompProfile?.type ?? psc.seccompProfile?.type;
        if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') {
          p.push(`${where}: seccompProfile is ${seccomp ?? 'unset'}, not RuntimeDefault`);
        }
      }
      for (const { owner, pod } of podSpecs(objs)) {
        if (pod.hostNetwork || pod.hostPID || pod.hostIPC) p.push(`${name(owner)}: uses host namespaces`);
      }
      return p;
    },
  },
  {
    name: 'image-pinned',
    describe: 'every image is pinned by a tag or digest, never :latest',
    check(objs) {
      const p = [];
      for (const { c, where } of containersOf(objs)) {
        const image = c.image ?? '';
        const last = image.split('/').pop();
        if (!image) p.push(`${where}: no image`);
        else if (/@sha256:[0-9a-f]{64}$/.test(image)) continue;
        else if (!last.includes(':')) p.push(`${where}: image ${image} has no tag (means :latest)`);
        else if (last.endsWith(':latest')) p.push(`${where}: image ${image} uses :latest`);
      }
      return p;
    },
  },
  {
    name: 'service-selectors',
    describe: 'every Service selects pods here and targets ports they declare',
    check(objs) {
      const p = [];
      for (const s of ofKind(objs, 'Service')) {
        const w = workloads(objs).find((x) => selectorMatches(s.spec?.selector, x.spec?.template?.metadata?.labels));
        if (!w) {
          p.push(`${name(s)} selects no pods of these manifests`);
          continue;
        }
        const containers = w.spec.template.spec.containers ?? [];
        for (const port of s.spec?.ports ?? []) {
          const target = port.targetPort ?? port.port;
          const declared = (c) => (c.ports ?? []).some((cp) => (typeof target === 'number' ? cp.containerPort === target : cp.name === target));
          if (!containers.some(declared)) {
            p.push(`${name(s)} port ${port.name ?? port.port}: target ${target} is not a port of ${name(w)}`);
          }
        }
      }
      return p;
    },
  },
  {
    name: 'secret-volumes',
    describe: 'every Secret volume refers to a Secret that is deployed with the manifests',
    check(objs, ctx = {}) {
      const p = [];
      const known = new Set([...ofKind(objs, 'Secret').map((s) => s.metadata?.name), ...(ctx.generatedSecrets ?? [])]);
      for (const { owner, pod } of podSpecs(objs)) {
        for (const v of pod.volumes ?? []) {
          if (v.secret && !known.has(v.secret.secretName)) {
            p.push(`${name(owner)} volume ${v.name}: Secret ${v.secret.secretName} is not deployed`);
          }
        }
      }
      return p;
    },
  },
  {
    name: 'executor-contract',
    describe: 'spark-executor: ports, probes on 9464, preStop sleep, grace > drain, env, spread, rollout',
    check(objs) {
      const p = [];
      const d = objs.find((o) => o?.kind === 'Deployment' && o.metadata?.name === 'spark-executor');
      if (!d) return ['no Deployment spark-executor'];
      const pod = d.spec?.template?.spec ?? {};
      const c = (pod.containers ?? []).find((x) => x.name === 'executor');
      if (!c) return ['Deployment spark-executor has no container executor'];
      const ports = (c.ports ?? []).map((x) => x.containerPort);
      for (const port of [4001, 9464]) if (!ports.includes(port)) p.push(`container executor does not declare port ${port}`);
      // Startup is liveness's gate, not readiness's: a failing warmup must never restart the pod.
      const probes = { startupProbe: '/healthz', readinessProbe: '/readyz', livenessProbe: '/healthz' };
      for (const [probe, want] of Object.entries(probes)) {
        const g = c[probe]?.httpGet;
        if (!g) { p.push(`${probe} is not an httpGet probe`); continue; }
        if (g.path !== want) p.push(`${probe} path ${g.path}, want ${want}`);
        if (resolvePort(c, g.port) !== 9464) p.push(`${probe} port ${g.port} is not the admin port 9464`);
      }
      const pre = c.lifecycle?.preStop;
      if (!pre?.sleep?.seconds) p.push('lifecycle.preStop is not a sleep action (the image has no shell)');
      if (pre?.exec) p.push('lifecycle.preStop uses exec, but the image has no shell');
      const delay = Number(envValue(c, 'SHUTDOWN_DELAY_MS'));
      const timeout = Number(envValue(c, 'SHUTDOWN_TIMEOUT_MS'));
      if (!(delay >= 0) || !(timeout > 0)) p.push('SHUTDOWN_DELAY_MS and SHUTDOWN_TIMEOUT_MS must be set');
      const grace = pod.terminationGracePeriodSeconds ?? 30;
      const needed = (pre?.sleep?.seconds ?? 0) + (delay + timeout) / 1000;
      if (!(grace > needed)) p.push(`terminationGracePeriodSeconds ${grace} is not above preStop + delay + timeout = ${needed} s`);
      if (envValue(c, 'REDIS_URL') !== 'redis://spark-redis:6379/0') p.push(`REDIS_URL is ${envValue(c, 'REDIS_URL')}`);
      const redisSvc = objs.find((o) => o?.kind === 'Service' && o.metadata?.name === 'spark-redis');
      if (!redisSvc || !(redisSvc.spec?.ports ?? []).some((x) => x.port === 6379)) p.push('no Service spark-redis on port 6379');
      const keys = envValue(c, 'TENANT_KEYS_FILE');
      const mount = (c.volumeMounts ?? []).find((m) => keys?.startsWith(m.mountPath.replace(/\/?$/, '/')));
      const vol = mount && (pod.volumes ?? []).find((v) => v.name === mount.name);
      if (keys !== '/etc/spark/tenants.json') p.push(`TENANT_KEYS_FILE is ${keys}`);
      else if (!vol?.secret || mount.readOnly !== true) p.push('TENANT_KEYS_FILE is not on a read-only Secret volume');
      const uid = c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
      if (uid !== 65532) p.push(`runs as uid ${uid}, want 65532 (distroless nonroot)`);
      const req = c.resources?.requests ?? {};
      const lim = c.resources?.limits ?? {};
      if (quantity(req.cpu) !== 0.2 || quantity(req.memory) !== 256 * 2 ** 20) p.push('requests are not 200m / 256Mi');
      if (quantity(lim.cpu) !== 1 || quantity(lim.memory) !== 2 ** 30) p.push('limits are not 1 CPU / 1Gi');
      if (!(pod.topologySpreadConstraints ?? []).some((t) => t.topologyKey === 'kubernetes.io/hostname')) {
        p.push('no topologySpreadConstraint over kubernetes.io/hostname');
      }
      const ru = d.spec?.strategy?.rollingUpdate;
      if (d.spec?.strategy?.type !== 'RollingUpdate' || ru?.maxSurge !== 1 || ru?.maxUnavailable !== 0) {
        p.push('rolling update is not maxSurge 1 / maxUnavailable 0');
      }
      const hpa = objs.find((o) => o?.kind === 'HorizontalPodAutoscaler' && o.metadata?.name === 'spark-executor-hpa');
      if (!hpa) p.push('no HorizontalPodAutoscaler spark-executor-hpa');
      else {
        const metric = (r) => (hpa.spec?.metrics ?? []).find((m) => m.type === 'Resource' && m.resource?.name === r);
        for (const r of ['cpu', 'memory']) {
          if (metric(r)?.resource?.target?.type !== 'Utilization') p.push(`HPA has no ${r} Utilization metric`);
        }
        if (!hpa.spec?.behavior?.scaleUp || !hpa.spec?.behavior?.scaleDown) p.push('HPA lacks scaleUp/scaleDown behavior');
      }
      const pdb = ofKind(objs, 'PodDisruptionBudget').find((b) => selectorMatches(b.spec?.selector, d.spec?.template?.metadata?.labels));
      if (!pdb) p.push('no PodDisruptionBudget covers spark-executor');
      else if (pdb.spec?.maxUnavailable !== 1) p.push(`PDB maxUnavailable is ${pdb.spec?.maxUnavailable}, want 1`);
      return p;
    },
  },
];
