// Unknown-field detection for Kubernetes objects.
//
// The schemas shipped with kubernetes-models do not forbid extra properties, so a typo such as
// `replcas` or `livenesProbe` passes schema validation and is silently dropped by the API server.
// The package's TypeScript declarations, however, list every field of every type, one per line:
//
//     import { IIoK8sApiCoreV1Probe } from "./Probe.js";
//     export interface IContainer {
//         "livenessProbe"?: IIoK8sApiCoreV1Probe;
//
// This module reads those declarations and walks an object, reporting every key the type does
// not declare.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const NODE_MODULES = path.resolve(here, '..', 'node_modules');

const cache = new Map();

function resolveImport(fromFile, spec) {
  let target;
  if (spec.startsWith('.')) {
    target = path.resolve(path.dirname(fromFile), spec.replace(/\.js$/, '') + '.d.ts');
  } else {
    target = path.join(NODE_MODULES, spec.replace(/\.js$/, '') + '.d.ts');
  }
  return existsSync(target) ? target : null;
}

// Returns Map(field -> { file: declaration of the field's type or null, array: boolean }).
function fieldsOf(file) {
  if (cache.has(file)) return cache.get(file);
  const text = readFileSync(file, 'utf8');
  const imports = new Map();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
    imports.set(m[1], resolveImport(file, m[2]));
  }
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^export interface \w+/.test(l));
  if (start < 0) throw new Error(`no interface in ${file}`);
  const fields = new Map();
  for (let i = start + 1; i < lines.length && lines[i] !== '}'; i++) {
    const m = /^ {4}"([^"]+)"\??: (.*?);?$/.exec(lines[i]);
    if (!m) continue;
    const type = m[2].trim();
    let ref = null;
    let array = false;
    let t = /^Array<(\w+)>$/.exec(type);
    if (t && imports.has(t[1])) {
      ref = imports.get(t[1]);
      array = true;
    } else if ((t = /^(\w+)$/.exec(type)) && imports.has(t[1])) {
      ref = imports.get(t[1]);
    }
    fields.set(m[1], { file: ref, array });
  }
  cache.set(file, fields);
  return fields;
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function walk(value, file, where, out) {
  if (!isPlainObject(value)) return;
  const fields = fieldsOf(file);
  for (const [key, child] of Object.entries(value)) {
    const f = fields.get(key);
    if (!f) {
      out.push(`${where}.${key}`);
      continue;
    }
    if (!f.file) continue;
    if (f.array) {
      if (Array.isArray(child)) child.forEach((c, i) => walk(c, f.file, `${where}.${key}[${i}]`, out));
    } else {
      walk(child, f.file, `${where}.${key}`, out);
    }
  }
}

// Declaration file of a top-level kind, e.g. apps/v1 Deployment -> kubernetes-models/apps/v1/Deployment.d.ts
export function declarationFor(apiVersion, kind) {
  const file = path.join(NODE_MODULES, 'kubernetes-models', apiVersion, `${kind}.d.ts`);
  return existsSync(file) ? file : null;
}

// Lists the dotted paths of every field the object's type does not declare.
export function unknownFields(obj) {
  const file = declarationFor(obj.apiVersion, obj.kind);
  if (!file) return [`no type declaration for ${obj.apiVersion} ${obj.kind}`];
  const out = [];
  walk(obj, file, '', out);
  return out.map((p) => p.replace(/^\./, ''));
}
