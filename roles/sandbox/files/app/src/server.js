// Sandbox stand-in for the Health Butler API. Real PostgreSQL, real Redis.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
const { Pool } = require('pg');
const { loadEnv } = require('./env');
const redis = require('./redis');

const appDir = path.resolve(__dirname, '..');
const env = Object.assign({}, loadEnv(path.join(appDir, '.env')), process.env);
const build = JSON.parse(fs.readFileSync(path.join(__dirname, 'BUILD_INFO.json'), 'utf8'));
const port = Number(env.PORT || 3000);
const pool = new Pool({
  connectionString: env.DATABASE_URL,
  max: Number(env.DB_POOL_MAX || 5),
  connectionTimeoutMillis: 2000,
  idleTimeoutMillis: 10000,
});
pool.on('error', (e) => console.error('Cannot connect to database: ' + e.message));
const retained = [];

function send(res, status, body, headers) {
  res.writeHead(status, Object.assign({ 'Content-Type': 'application/json' }, headers || {}));
  res.end(JSON.stringify(body));
}

function readBody(req) {
  return new Promise((resolve) => {
    let data = '';
    req.on('data', (c) => { data += c; });
    req.on('end', () => { try { resolve(data ? JSON.parse(data) : {}); } catch (e) { resolve(null); } });
  });
}

function withTimeout(promise, ms, what) {
  return Promise.race([promise, new Promise((_, rej) => setTimeout(() => rej(new Error(what + ' timeout')), ms))]);
}

async function health(res) {
  if (env.MAINTENANCE_FLAG && fs.existsSync(env.MAINTENANCE_FLAG)) {
    return send(res, 503, { status: 'maintenance', version: build.version }, { 'Retry-After': '60' });
  }
  if (build.healthBreak) {
    return send(res, 500, { status: 'broken', version: build.version, error: build.healthBreak });
  }
  const out = { status: 'ok', version: build.version, db: 'ok', redis: 'ok', failed: [] };
  await Promise.all([
    withTimeout(pool.query('SELECT 1 AS ok'), 2000, 'database').catch((e) => {
      out.db = 'error: ' + e.message; out.failed.push('database');
      console.error('Cannot connect to database: ' + e.message);
    }),
    withTimeout(redis.command(env.REDIS_URL, ['PING'], 1000), 1500, 'redis').catch((e) => {
      out.redis = 'error: ' + e.message; out.failed.push('redis');
    }),
  ]);
  if (out.failed.length) out.status = 'unavailable: ' + out.failed.join(', ');
  send(res, out.failed.length ? 503 : 200, out);
}

async function insertRow(req, res) {
  const body = await readBody(req);
  if (!body) return send(res, 400, { error: 'body must be JSON' });
  const r = await pool.query(
    'INSERT INTO health_data (user_id, metric, value) VALUES ($1, $2, $3) RETURNING id, created_at',
    [body.user_id || 1, body.metric || 'heart_rate', body.value === undefined ? 70 : body.value]);
  send(res, 201, r.rows[0]);
}

async function latestRows(url, res) {
  const limit = Math.min(Number(url.searchParams.get('limit') || 10), 1000);
  const r = await pool.query('SELECT id, user_id, metric, value, created_at FROM health_data ORDER BY created_at DESC, id DESC LIMIT $1', [limit]);
  send(res, 200, r.rows);
}

function allocate(url, res) {
  // Sandbox only: retain memory until V8 runs out of heap.
  if (env.HB_SANDBOX !== '1') return send(res, 404, { error: 'not found' });
  const mb = Number(url.searchParams.get('mb') || 64);
  send(res, 202, { allocating_mb: mb, forever: url.searchParams.get('forever') === '1' });
  const grow = () => {
    for (let i = 0; i < mb; i++) retained.push(new Array(128 * 1024).fill(i));
    if (url.searchParams.get('forever') === '1') setTimeout(grow, 10);
  };
  setImmediate(grow);
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  try {
    if (req.method === 'GET' && url.pathname === '/health') return await health(res);
    if (env.MAINTENANCE_FLAG && fs.existsSync(env.MAINTENANCE_FLAG)) {
      return send(res, 503, { error: 'maintenance' }, { 'Retry-After': '60' });
    }
    // A release can fail a share of its requests (build.json FAIL_RATE): healthy by /health, failing users.
    if (build.failRate && Math.random() < build.failRate) return send(res, 500, { error: 'release fault' });
    if (url.pathname === '/api/health-data' && req.method === 'POST') return await insertRow(req, res);
    if (url.pathname === '/api/health-data' && req.method === 'GET') return await latestRows(url, res);
    if (url.pathname === '/api/version') return send(res, 200, build);
    if (url.pathname === '/debug/allocate' && req.method === 'POST') return allocate(url, res);
    send(res, 404, { error: 'not found' });
  } catch (e) {
    console.error('request failed: ' + e.message);
    send(res, 500, { error: e.message });
  }
});

server.listen(port, env.HOST || '127.0.0.1', () => {
  console.log('health-butler ' + build.version + ' listening on ' + port);
});

function shutdown() {
  server.close(() => pool.end().finally(() => process.exit(0)));
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
