// Lints the Dockerfile with dockerfile-utils and checks the image contract the deployment relies
// on: a pinned Alpine build stage that makes a static binary, a digest-pinned distroless
// runtime, uid 65532, ports 4001/9464, exec-form HEALTHCHECK and ENTRYPOINT, no shell needed at
// run time, and a .dockerignore that keeps local secrets and build outputs out of the context.
// Negative checks feed deliberately broken copies and expect each check to reject them.
// One line per check; the last line is "N passed, M failed"; exit status 1 on any failure.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockerfileParser } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..', '..');
const DOCKERFILE = path.join(ROOT, 'Dockerfile');
const DOCKERIGNORE = path.join(ROOT, '.dockerignore');

const MIN_ALPINE = [3, 20];
const RUNTIME_IMAGE = 'gcr.io/distroless/static-debian12:nonroot';
// Static archives (and headers) the build stage must install, see the Dockerfile's comments.
const BUILD_PACKAGES = [
  'build-base', 'pkgconf', 'binutils',
  'libevent-dev', 'libevent-static', 'jansson-dev', 'jansson-static',
  'curl-dev', 'curl-static', 'openssl-dev', 'openssl-libs-static', 'hiredis-dev',
  'nghttp2-static', 'zlib-static', 'brotli-static', 'zstd-static', 'c-ares-dev',
  'libidn2-static', 'libpsl-static', 'libunistring-static',
];

let passed = 0;
let failed = 0;

function run(fn) {
  try {
    return fn() ?? [];
  } catch (e) {
    return [`error: ${e.message}`];
  }
}

function check(label, fn) {
  const problems = run(fn);
  if (problems.length === 0) {
    passed++;
    console.log(`ok   ${label}`);
  } else {
    failed++;
    console.log(`FAIL ${label}: ${problems.join('; ')}`);
  }
}

function rejects(label, fn) {
  const problems = run(fn);
  if (problems.length > 0) {
    passed++;
    console.log(`ok   rejects ${label} (${problems[0]})`);
  } else {
    failed++;
    console.log(`FAIL rejects ${label}: the broken copy was accepted`);
  }
}

const SEVERITY = { 1: 'error', 2: 'warning', 3: 'info', 4: 'hint' };

// dockerfile-utils diagnostics as "line N: severity: message".
function lintFindings(content) {
  return validate(content).map((d) => `line ${d.range.start.line + 1}: ${SEVERITY[d.severity] ?? 'note'}: ${d.message}`);
}

// Splits the Dockerfile into stages: [{ from, instructions: [{ keyword, args, raw, line }] }].
function stages(content) {
  const lines = content.split('\n');
  const df = DockerfileParser.parse(content);
  const out = [];
  for (const i of df.getInstructions()) {
    const r = i.getRange();
    const raw = lines.slice(r.start.line, r.end.line + 1).join('\n');
    const item = { keyword: i.getKeyword(), args: (i.getArgumentsContent() ?? '').replace(/\s+/g, ' ').trim(), raw, line: r.start.line + 1 };
    if (item.keyword === 'FROM') {
      out.push({
        from: { image: i.getImage(), name: i.getImageName(), registry: i.getRegistry(), tag: i.getImageTag(), digest: i.getImageDigest(), stage: i.getBuildStage() },
        instructions: [item],
      });
    } else if (out.length) {
      out[out.length - 1].instructions.push(item);
    }
  }
  return out;
}

const fullName = (f) => (f.registry ? `${f.registry}/${f.name}` : f.name);
const of = (stage, keyword) => stage.instructions.filter((i) => i.keyword === keyword);
const isExecForm = (args) => {
  try {
    const v = JSON.parse(args);
    return Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string');
  } catch {
    return false;
  }
};

// Each contract check: (content) -> problems.
const CONTRACT = {
  'multi-stage': (c) => {
    const s = stages(c);
    return s.length >= 2 ? [] : [`${s.length} stage(s), want a build stage and a runtime stage`];
  },
  'base images pinned, never :latest': (c) => stages(c).flatMap(({ from }) => {
    if (from.digest) return /^sha256:[0-9a-f]{64}$/.test(from.digest) ? [] : [`${from.image}: malformed digest`];
    if (!from.tag) return [`${from.image} has no tag (means :latest)`];
    return from.tag === 'latest' ? [`${from.image} uses :latest`] : [];
  }),
  [`build stage is alpine >= ${MIN_ALPINE.join('.')} pinned to a patch release`]: (c) => {
    const b = stages(c)[0]?.from;
    if (!b || fullName(b) !== 'alpine') return [`first stage is ${b?.image}, not alpine`];
    const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(b.tag ?? '');
    if (!m) return [`alpine tag ${b.tag} is not X.Y.Z`];
    const [maj, min] = [Number(m[1]), Number(m[2])];
    if (maj < MIN_ALPINE[0] || (maj === MIN_ALPINE[0] && min < MIN_ALPINE[1])) return [`alpine ${b.tag} is older than ${MIN_ALPINE.join('.')}`];
    return b.stage ? [] : ['build stage has no name (AS build)'];
  },
  'build stage installs the -dev and -static packages and runs make static': (c) => {
    const b = stages(c)[0];
    if (!b) return ['no stages'];
    const runs = of(b, 'RUN').map((i) => i.args).join(' ');
    const apk = of(b, 'RUN').find((i) => /\bapk add\b/.test(i.args))?.args ?? '';
    const words = new Set(apk.split(/\s+/));
    const p = BUILD_PACKAGES.filter((pkg) => !words.has(pkg)).map((pkg) => `apk add lacks ${pkg}`);
    if (!/\bmake static\b/.test(runs)) p.push('no RUN make static');
    if (!/readelf/.test(runs)) p.push('the static binary is not checked with readelf');
    return p;
  },
  [`runtime is ${RUNTIME_IMAGE} pinned by digest`]: (c) => {
    const s = stages(c);
    const r = s[s.length - 1]?.from;
    if (!r) return ['no stages'];
    const p = [];
    if (`${fullName(r)}:${r.tag}` !== RUNTIME_IMAGE) p.push(`runtime image is ${r.image}`);
    if (!/^sha256:[0-9a-f]{64}$/.test(r.digest ?? '')) p.push('runtime image is not pinned by a sha256 digest');
    return p;
  },
  'runtime copies only the binary from the build stage': (c) => {
    const s = stages(c);
    const r = s[s.length - 1];
    const buildName = s[0]?.from.stage;
    const copies = of(r, 'COPY').concat(of(r, 'ADD'));
    const p = [];
    if (!copies.some((i) => i.raw.includes(`--from=${buildName}`) && /\s\/spark-executor\s*$/.test(i.raw))) p.push('no COPY --from=build ... /spark-executor');
    for (const i of copies) if (!i.raw.includes('--from=')) p.push(`line ${i.line}: copies from the build context`);
    return p;
  },
  'runtime runs as uid 65532': (c) => {
    const s = stages(c);
    const users = of(s[s.length - 1], 'USER');
    const last = users[users.length - 1]?.args;
    return /^65532(:65532)?$/.test(last ?? '') ? [] : [`USER is ${last ?? 'unset'}`];
  },
  'runtime exposes 4001 and 9464': (c) => {
    const s = stages(c);
    const ports = of(s[s.length - 1], 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => p.replace(/\/tcp$/, ''));
    return ['4001', '9464'].filter((p) => !ports.includes(p)).map((p) => `port ${p} not exposed`);
  },
  'HEALTHCHECK is one exec-form call of spark-executor healthcheck': (c) => {
    const s = stages(c);
    const hc = of(s[s.length - 1], 'HEALTHCHECK');
    if (hc.length !== 1) return [`${hc.length} HEALTHCHECK instructions in the runtime stage`];
    const m = /^CMD\s+(.*)$/.exec(hc[0].args);
    if (!m || !isExecForm(m[1])) return ['HEALTHCHECK is not CMD ["..."] (exec form; the image has no shell)'];
    return JSON.stringify(JSON.parse(m[1])) === JSON.stringify(['/spark-executor', 'healthcheck']) ? [] : [`HEALTHCHECK runs ${m[1]}`];
  },
  'ENTRYPOINT is the binary in exec form, CMD in exec form': (c) => {
    const s = stages(c);
    const r = s[s.length - 1];
    const ep = of(r, 'ENTRYPOINT');
    const p = [];
    if (ep.length !== 1 || !isExecForm(ep[0].args)) p.push('ENTRYPOINT is missing or not in exec form');
    else if (JSON.parse(ep[0].args)[0] !== '/spark-executor') p.push(`ENTRYPOINT runs ${ep[0].args}`);
    for (const cmd of of(r, 'CMD')) if (!isExecForm(cmd.args)) p.push(`line ${cmd.line}: CMD is in shell form`);
    return p;
  },
  'runtime stage needs no shell (no RUN, no SHELL)': (c) => {
    const s = stages(c);
    return s[s.length - 1].instructions
      .filter((i) => i.keyword === 'RUN' || i.keyword === 'SHELL')
      .map((i) => `line ${i.line}: ${i.keyword} needs a shell, distroless has none`);
  },
};

function dockerignoreProblems(text) {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const p = [];
  if (!lines.includes('*')) {
    for (const must of ['.git', 'runtime', 'build', 'node_modules']) {
      if (!lines.some((l) => l.replace(/^\*\*\//, '').replace(/\/$/, '') === must)) p.push(`${must} is not excluded`);
    }
  } else {
    for (const need of ['!Makefile', '!shared/', '!supervisor/', '!worker/']) if (!lines.includes(need)) p.push(`${need} is not re-included`);
    if (lines.some((l) => /^!(runtime|\.git|build|tests|k8s)\b/.test(l))) p.push('re-includes something that must stay out');
  }
  return p;
}

// ---- the real files -------------------------------------------------------------------------------

const content = readFileSync(DOCKERFILE, 'utf8');
const findings = lintFindings(content);
for (const f of findings) console.log(`     Dockerfile ${f}`);
check(`dockerfile-utils lint: Dockerfile has no errors or warnings (${findings.length} findings)`, () => findings);
for (const [name, fn] of Object.entries(CONTRACT)) check(name, () => fn(content));
check('.dockerignore keeps secrets, VCS data and build outputs out of the context', () =>
  existsSync(DOCKERIGNORE) ? dockerignoreProblems(readFileSync(DOCKERIGNORE, 'utf8')) : ['.dockerignore is missing']);

// ---- negative checks ----------------------------------------------------------------------------

function broken(from, to) {
  if (!content.includes(from)) throw new Error(`cannot build the broken copy: "${from}" not in the Dockerfile`);
  return content.replace(from, to);
}
const runtimeFrom = /^FROM gcr\.io\/distroless\/.*$/m.exec(content)?.[0] ?? 'FROM gcr.io/distroless';
const buildFrom = /^FROM alpine:.*$/m.exec(content)?.[0] ?? 'FROM alpine';
const healthcheck = /^HEALTHCHECK[^\n]*\\\n[^\n]*$/m.exec(content)?.[0] ?? 'HEALTHCHECK';

rejects('dockerfile-utils: HEALTHCHECK --interval=bogus', () => lintFindings(broken('--interval=10s', '--interval=bogus')));
rejects('dockerfile-utils: USER without an argument', () => lintFindings(broken('USER 65532:65532', 'USER')));
rejects('dockerfile-utils: two HEALTHCHECK instructions', () => lintFindings(`${content}\nHEALTHCHECK CMD ["/spark-executor", "healthcheck"]\n`));
rejects('dockerfile-utils: unknown instruction', () => lintFindings(broken('WORKDIR /src', 'WORKDIRR /src')));
const negatives = [
  ['multi-stage', 'single stage', () => content.slice(content.indexOf(runtimeFrom))],
  ['base images pinned, never :latest', 'alpine:latest', () => broken(buildFrom, 'FROM alpine:latest AS build')],
  ['base images pinned, never :latest', 'untagged base', () => broken(buildFrom, 'FROM alpine AS build')],
  [`build stage is alpine >= ${MIN_ALPINE.join('.')} pinned to a patch release`, 'alpine 3.19.1', () => broken(buildFrom, 'FROM alpine:3.19.1 AS build')],
  [`build stage is alpine >= ${MIN_ALPINE.join('.')} pinned to a patch release`, 'alpine 3.22 (floating patch)', () => broken(buildFrom, 'FROM alpine:3.22 AS build')],
  ['build stage installs the -dev and -static packages and runs make static', 'no nghttp2-static', () => broken('nghttp2-static', '')],
  ['build stage installs the -dev and -static packages and runs make static', 'plain make', () => broken('make static VERSION', 'make VERSION')],
  [`runtime is ${RUNTIME_IMAGE} pinned by digest`, 'runtime without digest', () => broken(runtimeFrom, `FROM ${RUNTIME_IMAGE}`)],
  [`runtime is ${RUNTIME_IMAGE} pinned by digest`, 'runtime distroless/base', () => broken(runtimeFrom, runtimeFrom.replace('static-debian12', 'base-debian12'))],
  ['runtime copies only the binary from the build stage', 'COPY from the context', () => broken('COPY --from=build /out/spark-executor /spark-executor', 'COPY spark-executor /spark-executor')],
  ['runtime runs as uid 65532', 'USER root', () => broken('USER 65532:65532', 'USER root')],
  ['runtime runs as uid 65532', 'no USER', () => broken('USER 65532:65532', '')],
  ['runtime exposes 4001 and 9464', 'admin port not exposed', () => broken('EXPOSE 4001 9464', 'EXPOSE 4001')],
  ['HEALTHCHECK is one exec-form call of spark-executor healthcheck', 'shell-form HEALTHCHECK', () => broken(healthcheck, 'HEALTHCHECK CMD /spark-executor healthcheck || exit 1')],
  ['HEALTHCHECK is one exec-form call of spark-executor healthcheck', 'curl HEALTHCHECK', () => broken(healthcheck, 'HEALTHCHECK CMD ["curl", "-f", "http://localhost:9464/healthz"]')],
  ['HEALTHCHECK is one exec-form call of spark-executor healthcheck', 'no HEALTHCHECK', () => broken(healthcheck, '')],
  ['ENTRYPOINT is the binary in exec form, CMD in exec form', 'shell-form ENTRYPOINT', () => broken('ENTRYPOINT ["/spark-executor"]', 'ENTRYPOINT /spark-executor')],
  ['runtime stage needs no shell (no RUN, no SHELL)', 'RUN in the runtime stage', () => broken('USER 65532:65532', 'RUN chmod 0555 /spark-executor\nUSER 65532:65532')],
];
for (const [rule, what, make] of negatives) rejects(`${rule}: ${what}`, () => CONTRACT[rule](make()));
rejects('.dockerignore: runtime/ re-included', () => dockerignoreProblems(`${readFileSync(DOCKERIGNORE, 'utf8')}\n!runtime/\n`));
rejects('.dockerignore: denylist without .git', () => dockerignoreProblems('build/\nruntime/\nnode_modules\n'));

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
