'use strict'

// The Node.js stack that spark-executor replaces (fastify, @fastify/rate-limit
// and ioredis under node:cluster), kept only as a baseline for scripts/bench.
// It serves the one route the benchmark drives, GET /api/private/health, with
// the same authentication and per-tenant quota steps in front of it.
//
// Environment: PORT [4001], WORKERS [2], TENANT_KEYS_FILE
// [runtime/tenants.json], TENANT_DEFAULT_QPS [2], TENANT_BURST [4],
// REDIS_URL [unset: each worker counts in its own memory].

const cluster = require('node:cluster')
const crypto = require('node:crypto')
const fs = require('node:fs')

const PORT = intFromEnv('PORT', 4001)
const WORKERS = intFromEnv('WORKERS', 2)
const TENANT_KEYS_FILE = process.env.TENANT_KEYS_FILE || 'runtime/tenants.json'
const DEFAULT_QPS = intFromEnv('TENANT_DEFAULT_QPS', 2)
const DEFAULT_BURST = intFromEnv('TENANT_BURST', 4)
const REDIS_URL = process.env.REDIS_URL || ''

function intFromEnv (name, fallback) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^[1-9][0-9]*$/.test(raw)) {
    console.error(`${name} must be a positive integer, got "${raw}"`)
    process.exit(1)
  }
  return Number(raw)
}

function sha256 (text) {
  return crypto.createHash('sha256').update(text).digest()
}

// Returns Map org -> { keyHash, qps, burst }. Throws on a malformed file.
function loadTenants (file) {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'))
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new Error(`${file}: expected a JSON object of tenants`)
  }

  const tenants = new Map()
  for (const [org, entry] of Object.entries(doc)) {
    tenants.set(org, tenantFromEntry(file, org, entry))
  }
  return tenants
}

function tenantFromEntry (file, org, entry) {
  let keyHash
  if (typeof entry.apiKey === 'string' && entry.apiKey !== '') {
    keyHash = sha256(entry.apiKey)
  } else if (/^[0-9a-f]{64}$/i.test(entry.apiKeySha256 || '')) {
    keyHash = Buffer.from(entry.apiKeySha256, 'hex')
  } else {
    throw new Error(`${file}: tenant ${org} has no apiKey or apiKeySha256`)
  }

  const qps = entry.qps ?? DEFAULT_QPS
  const burst = entry.burst ?? DEFAULT_BURST
  if (!(qps > 0) || !(burst > 0)) {
    throw new Error(`${file}: tenant ${org} needs qps > 0 and burst > 0`)
  }
  return { keyHash, qps, burst }
}

// onRequest hook: X-Org-Id names the tenant, X-Api-Key must match its key.
// Unknown org and wrong key get the same answer.
function authenticate (tenants) {
  return function (request, reply, done) {
    const org = request.headers['x-org-id']
    const key = request.headers['x-api-key']
    const tenant = typeof org === 'string' ? tenants.get(org) : undefined

    if (tenant === undefined || typeof key !== 'string' ||
        !crypto.timingSafeEqual(sha256(key), tenant.keyHash)) {
      reply.code(401).send({
        error: 'unauthorized',
        message: 'missing or invalid X-Org-Id / X-Api-Key'
      })
      return
    }

    request.tenant = org
    reply.header('X-Tenant', org)
    done()
  }
}

function redisClient () {
  const Redis = require('ioredis')
  return new Redis(REDIS_URL, { connectTimeout: 500, maxRetriesPerRequest: 1 })
}

async function startWorker () {
  const tenants = loadTenants(TENANT_KEYS_FILE)
  const app = require('fastify')({ logger: false })

  app.decorateRequest('tenant', null)
  app.addHook('onRequest', authenticate(tenants))

  // Registered after the authentication hook, so it only ever sees known
  // tenants. A token bucket of rate qps and depth burst admits at most
  // qps + burst requests in one second: that is the window's limit.
  await app.register(require('@fastify/rate-limit'), {
    timeWindow: 1000,
    keyGenerator: (request) => request.tenant,
    max: (request, org) => {
      const tenant = tenants.get(org)
      return tenant.qps + tenant.burst
    },
    redis: REDIS_URL ? redisClient() : undefined,
    errorResponseBuilder: (request, context) => ({
      statusCode: 429,
      error: 'rate_limited',
      message: `quota exceeded, retry in ${context.after}`
    })
  })

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: 'not_found', message: 'no such route' })
  })

  app.get('/api/private/health', async (request) => {
    return { status: 'ok', org: request.tenant }
  })

  await app.listen({ port: PORT, host: '0.0.0.0' })
}

function startPrimary () {
  loadTenants(TENANT_KEYS_FILE) // fail here, once, on a bad file
  let stopping = false

  for (let i = 0; i < WORKERS; i++) cluster.fork()

  cluster.on('listening', (worker) => { worker.served = true })

  // Replace a worker that dies while serving; one that never got to listen
  // would only die again, so give up instead.
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers).length === 0) process.exit(0)
      return
    }
    console.error(`worker ${worker.process.pid} exited (${signal || code})`)
    if (!worker.served) process.exit(1)
    cluster.fork()
  })

  const stop = () => {
    stopping = true
    for (const worker of Object.values(cluster.workers)) worker.kill()
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

function fail (err) {
  console.error(`${cluster.isPrimary ? 'primary' : 'worker'} ${process.pid}: ` +
    err.message)
  process.exit(1)
}

if (cluster.isPrimary) {
  try {
    startPrimary()
  } catch (err) {
    fail(err)
  }
} else {
  startWorker().catch(fail)
}
