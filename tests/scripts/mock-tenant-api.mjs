// A tiny stand-in for the tenant API, for tests/scripts/run.sh: GET /api/private/health with
// X-Org-Id/X-Api-Key, a token bucket of BURST requests (no refill), then 429 with Retry-After.
// Listens on 127.0.0.1 on a free port, prints the port, and exits by itself after 60 s.
//   node mock-tenant-api.mjs [--burst N] [--no-limit]
import http from 'node:http';

const args = process.argv.slice(2);
const burst = Number(args[args.indexOf('--burst') + 1]) || 3;
const noLimit = args.includes('--no-limit');
const TENANTS = { orgA: 'demo-orgA-key-not-a-secret' };
let tokens = burst;

const server = http.createServer((req, res) => {
  const send = (status, body, headers = {}) => {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  if (req.url !== '/api/private/health') return send(404, { error: 'not_found', message: 'no such route' });
  const org = req.headers['x-org-id'];
  if (!org || TENANTS[org] === undefined || TENANTS[org] !== req.headers['x-api-key']) {
    return send(401, { error: 'unauthorized', message: 'missing or wrong credentials' });
  }
  const limits = { 'X-Tenant': org, 'X-RateLimit-Limit': String(burst) };
  if (!noLimit) {
    if (tokens <= 0) {
      return send(429, { error: 'rate_limited', message: 'quota exceeded' },
        { ...limits, 'X-RateLimit-Remaining': '0', 'Retry-After': '1', RateLimit: 'limit=3, remaining=0, reset=1' });
    }
    tokens--;
  }
  return send(200, { status: 'ok', org }, { ...limits, 'X-RateLimit-Remaining': String(Math.max(tokens, 0)) });
});

server.listen(0, '127.0.0.1', () => console.log(server.address().port));
setTimeout(() => process.exit(0), 60_000).unref();
process.on('SIGTERM', () => process.exit(0));
