'use strict'

// The Node.js stack that spark-executor replaces (fastify, @fastify/rate-limit
// and ioredis under node:cluster, undici towards the exchange), kept only as a
// baseline for scripts/bench. It serves the routes the benchmark drives,
// GET /api/private/health and GET /api/private/open-orders?symbol=…, with the
// same authentication and per-tenant quota steps in front of them.
//
// Open orders: the query (symbol, recvWindow, timestamp) is signed with the
// tenant's exchange apiSecret (hex HMAC-SHA256) and sent with its apiKey in
// X-MBX-APIKEY to EXCHANGE_BASE_URL/api/v3/openOrders over a keep-alive pool
// of OUTBOUND_MAX_CONCURRENCY / WORKERS connections per worker. The exchange's
// JSON array goes back with 200; its 429/418 -> 503 with Retry-After, other
// 4xx -> the same status, 5xx, a non-array or no connection -> 502, no answer
// within EXCHANGE_TIMEOUT_MS -> 504.
//
// Environment: PORT [4001], WORKERS [2], TENANT_KEYS_FILE
// [runtime/tenants.json], TENANT_DEFAULT_QPS [2], TENANT_BURST [4],
// REDIS_URL [unset: each worker counts in its own memory],
// EXCHANGE_BASE_URL [http://127.0.0.1:4100], OUTBOUND_MAX_CONCURRENCY [64],
// EXCHANGE_TIMEOUT_MS [5000], EXCHANGE_RECV_WINDOW_MS [5000].

const cluster = require('node:cluster')
const crypto = require('node:crypto')
const fs = require('node:fs')

const PORT = intFromEnv('PORT', 4001)
const WORKERS = intFromEnv('WORKERS', 2)
const TENANT_KEYS_FILE = process.env.TENANT_KEYS_FILE || 'runtime/tenants.json'
const DEFAULT_QPS = intFromEnv('TENANT_DEFAULT_QPS', 2)
const DEFAULT_BURST = intFromEnv('TENANT_BURST', 4)
const REDIS_URL = process.env.REDIS_URL || ''
const EXCHANGE_BASE_URL = process.env.EXCHANGE_BASE_URL ||
  'http://127.0.0.1:4100'
const OUTBOUND_MAX = intFromEnv('OUTBOUND_MAX_CONCURRENCY', 64)
const EXCHANGE_TIMEOUT_MS = intFromEnv('EXCHANGE_TIMEOUT_MS', 5000)
const RECV_WINDOW_MS = intFromEnv('EXCHANGE_RECV_WINDOW_MS', 5000)
const SYMBOL_RE = /^[A-Z0-9]{2,20}$/

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
  return { keyHash, qps, burst, exchange: exchangeFromEntry(file, org, entry) }
}

// The optional "exchange": { "apiKey": "...", "apiSecret": "..." }, or null.
function exchangeFromEntry (file, org, entry) {
  const ex = entry.exchange
  if (ex === undefined || ex === null) return null
  if (typeof ex !== 'object' || Array.isArray(ex) ||
      typeof ex.apiKey !== 'string' || ex.apiKey === '' ||
      typeof ex.apiSecret !== 'string' || ex.apiSecret === '') {
    throw new Error(`${file}: tenant ${org}: exchange needs non-empty ` +
      'apiKey and apiSecret')
  }
  return { apiKey: ex.apiKey, apiSecret: ex.apiSecret }
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

// The exchange: one keep-alive pool per worker, holding this worker's share
// of OUTBOUND_MAX_CONCURRENCY; further requests wait in the pool's queue.
function exchangeClient () {
  const { Pool, errors } = require('undici')
  const base = new URL(EXCHANGE_BASE_URL)
  const prefix = base.pathname.replace(/\/+$/, '')
  const pool = new Pool(base.origin, {
    connections: Math.max(1, Math.floor(OUTBOUND_MAX / WORKERS)),
    pipelining: 1,
    connect: { timeout: EXCHANGE_TIMEOUT_MS },
    headersTimeout: EXCHANGE_TIMEOUT_MS,
    bodyTimeout: EXCHANGE_TIMEOUT_MS
  })
  const timeouts = [errors.ConnectTimeoutError, errors.HeadersTimeoutError,
    errors.BodyTimeoutError]

  // Resolves to { status, text, retryAfter } or { failed: 502 | 504 }.
  return async function get (path, apiKey) {
    try {
      const res = await pool.request({
        method: 'GET',
        path: prefix + path,
        headers: { 'x-mbx-apikey': apiKey }
      })
      const text = await res.body.text()
      return {
        status: res.statusCode,
        text,
        retryAfter: Number.parseInt(res.headers['retry-after'], 10)
      }
    } catch (err) {
      return { failed: timeouts.some((t) => err instanceof t) ? 504 : 502 }
    }
  }
}

function parseJson (text) {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

function openOrdersRoute (tenants, exchangeGet) {
  return async function (request, reply) {
    const tenant = tenants.get(request.tenant)
    if (tenant.exchange === null) {
      return reply.code(403).send({
        error: 'no_exchange_credentials',
        message: 'this tenant has no exchange credentials'
      })
    }

    const symbol = request.query.symbol
    if (symbol !== undefined &&
        (typeof symbol !== 'string' || !SYMBOL_RE.test(symbol))) {
      return reply.code(400).send({
        error: 'bad_symbol',
        message: 'symbol must be 2-20 capital letters or digits'
      })
    }

    const query = (symbol !== undefined ? `symbol=${symbol}&` : '') +
      `recvWindow=${RECV_WINDOW_MS}&timestamp=${Date.now()}`
    const signature = crypto.createHmac('sha256', tenant.exchange.apiSecret)
      .update(query).digest('hex')
    const r = await exchangeGet(
      `/api/v3/openOrders?${query}&signature=${signature}`,
      tenant.exchange.apiKey)

    if (r.failed === 504) {
      return reply.code(504).send({
        error: 'upstream_timeout',
        message: 'the exchange did not answer in time'
      })
    }
    if (r.failed === 502) {
      return reply.code(502).send({
        error: 'upstream_unavailable',
        message: 'the exchange cannot be reached'
      })
    }
    if (r.status === 429 || r.status === 418) {
      return reply.code(503)
        .header('Retry-After', r.retryAfter > 0 ? r.retryAfter : 1)
        .send({
          error: 'exchange_rate_limited',
          message: 'the exchange is rate limiting this service; retry ' +
            'after Retry-After seconds'
        })
    }
    if (r.status >= 400 && r.status < 500) {
      const err = parseJson(r.text)
      return reply.code(r.status).send({
        error: 'exchange_rejected',
        message: typeof err?.msg === 'string'
          ? err.msg
          : 'the exchange refused the request',
        exchange_code: Number.isInteger(err?.code) ? err.code : 0
      })
    }
    if (r.status !== 200 || !Array.isArray(parseJson(r.text))) {
      return reply.code(502).send({
        error: 'upstream_error',
        message: 'the exchange answered with an error'
      })
    }
    return reply.code(200).type('application/json').send(r.text)
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

  app.get('/api/private/open-orders', openOrdersRoute(tenants,
    exchangeClient()))

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
