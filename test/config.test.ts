import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/core/config.js';

function refuses(env: Record<string, string>, variable: string) {
  assert.throws(
    () => loadConfig(env),
    (e: unknown) => e instanceof ConfigError && e.variable === variable && e.message.startsWith(variable),
  );
}

test('defaults follow the configuration contract', () => {
  const c = loadConfig({});
  assert.equal(c.port, 8080);
  assert.equal(c.redisUrl, 'redis://127.0.0.1:6379');
  assert.match(c.prefix, /^ferry-[0-9a-f]{8}$/, 'development on the local Redis: the data directory’s own prefix');
  assert.equal(c.maxFileBytes, 2147483648);
  assert.equal(c.uploadChunkBytes, 8388608);
  assert.equal(c.syncWaitSeconds, 60);
  assert.equal(c.upstreamAttempts, 10);
  assert.equal(c.geminiRpm, 0);
  assert.deepEqual(c.webhookRetrySchedule, [0, 5, 300, 1800, 7200, 18000, 36000, 36000]);
  assert.equal(c.allowPrivateNetworks, false);
  assert.equal(c.gemini.apiKey, undefined);
});

test('a bad value names the variable', () => {
  refuses({ PORT: 'eighty' }, 'PORT');
  refuses({ FERRY_UPLOAD_CHUNK_BYTES: String(1000 * 1000) }, 'FERRY_UPLOAD_CHUNK_BYTES');
  refuses({ REDIS_URL: 'not a url' }, 'REDIS_URL');
  refuses({ FERRY_API_KEYS: 'just-a-key' }, 'FERRY_API_KEYS');
  refuses({ FERRY_REDIS_PREFIX: 'has space' }, 'FERRY_REDIS_PREFIX');
  refuses({ WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'maybe' }, 'WEBHOOK_ALLOW_PRIVATE_NETWORKS');
  refuses({ FERRY_WEBHOOK_RETRY_SCHEDULE: '0,soon' }, 'FERRY_WEBHOOK_RETRY_SCHEDULE');
  refuses({ AZURE_STORAGE_FILE_SYSTEM: 'Bad_Name' }, 'AZURE_STORAGE_FILE_SYSTEM');
  refuses({ FERRY_API_KEYS_FILE: '/nonexistent/keys' }, 'FERRY_API_KEYS_FILE');
  refuses({ FERRY_BATCH_EXECUTION: 'cheap' }, 'FERRY_BATCH_EXECUTION');
  refuses({ REDIS_CLUSTER_NODES: 'redis://127.0.0.1:7000,127.0.0.1:7001' }, 'REDIS_CLUSTER_NODES');
  refuses({ REDIS_CLUSTER_NODES: ' , ' }, 'REDIS_CLUSTER_NODES');
  const azurite = 'UseDevelopmentStorage=true';
  refuses({ FERRY_STAGING_CONTAINER: 'Staging_Area', AZURE_STORAGE_CONNECTION_STRING: azurite }, 'FERRY_STAGING_CONTAINER');
  refuses({ FERRY_STAGING_CONTAINER: 'staging' }, 'FERRY_STAGING_CONTAINER');
});

test('with several bad values the first reported follows the order of checks', () => {
  // Listed in the order loadConfig checks them; removing each restores its default, which is valid.
  const env: Record<string, string> = {
    FERRY_API_KEYS: 'just-a-key',
    FERRY_API_KEYS_FILE: '/nonexistent/keys',
    FERRY_UPLOAD_CHUNK_BYTES: String(1000 * 1000),
    FERRY_REDIS_PREFIX: '{ferry}',
    FERRY_WEBHOOK_RETRY_SCHEDULE: '0,soon',
    AZURE_STORAGE_FILE_SYSTEM: 'Bad_Name',
    FERRY_AZURE_HANDOFF: 'email',
    FERRY_GENERATE_CONCURRENCY: '0',
    FERRY_BATCH_WORKER_SLOTS: '300',
    REDIS_URL: 'not a url',
    FERRY_FILE_RETENTION_SECONDS: '10',
    FERRY_CONTENT_RETENTION_SECONDS: String(365 * 86400),
    PORT: 'eighty',
    REDIS_CLUSTER_NODES: '127.0.0.1:7000',
    GEMINI_BASE_URL: 'ftp://example.com',
    FERRY_STAGING_CONTAINER: 'Staging_Area',
    FERRY_MAX_FILE_BYTES: '0',
    FERRY_SYNC_WAIT_SECONDS: '4000',
    FERRY_UPSTREAM_ATTEMPTS: '0',
    FERRY_RETRY_BASE_MS: '0',
    FERRY_RETRY_MAX_MS: '0',
    FERRY_GEMINI_RPM: 'many',
    FERRY_GEMINI_TPM: 'many',
    FERRY_WEBHOOK_TIMEOUT_SECONDS: '0',
    FERRY_WEBHOOK_MAX_PAYLOAD_BYTES: '10',
    FERRY_WEBHOOK_DISABLE_AFTER_SECONDS: '0',
    FERRY_DELIVER_CONCURRENCY: '0',
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'maybe',
    FERRY_ACTIVE_WAIT_SECONDS: '0',
    FERRY_UPLOAD_CONCURRENCY: '0',
    FERRY_TENANT_MAX_RUNNING: 'many',
    FERRY_JOB_RETENTION_SECONDS: '0',
    FERRY_JOB_LOCK_MS: '0',
    FERRY_IDEMPOTENCY_LEASE_MS: '0',
    FERRY_BATCH_CONCURRENCY: '0',
    FERRY_BATCH_MAX_LINES: '0',
    FERRY_BATCH_MAX_BYTES: '0',
    FERRY_BATCH_EXECUTION: 'cheap',
    FERRY_METRICS_PORT: '70000',
    FERRY_EMULATOR_PORT: '70000',
    FERRY_EMULATOR_PROCESSING_MS: 'soon',
    AZURE_STORAGE_ENDPOINT: 'nope',
    FERRY_AZURE_CREATE_CONTAINER: 'maybe',
  };
  const expected = Object.keys(env);
  const reported: string[] = [];
  for (let i = 0; i <= expected.length; i++) {
    try {
      loadConfig(env);
      break;
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      reported.push(e.variable);
      delete env[e.variable];
    }
  }
  assert.deepEqual(reported, expected);
});

test('the several-machines settings: a cluster instead of REDIS_URL, staging in a container, the batch execution', () => {
  const c = loadConfig({
    REDIS_CLUSTER_NODES: 'redis://10.0.0.1:6379, rediss://10.0.0.2:6380',
    FERRY_STAGING_CONTAINER: 'ferry-staging',
    AZURE_STORAGE_CONNECTION_STRING: 'UseDevelopmentStorage=true',
    FERRY_BATCH_EXECUTION: 'gemini_batch',
  });
  assert.deepEqual(c.redisClusterNodes, ['redis://10.0.0.1:6379', 'rediss://10.0.0.2:6380']);
  assert.equal(c.stagingContainer, 'ferry-staging');
  assert.equal(c.batch.execution, 'gemini_batch');
  const d = loadConfig({});
  assert.equal(d.redisClusterNodes, null);
  assert.equal(d.stagingContainer, undefined);
  assert.equal(d.batch.execution, 'direct');
});

test('production refuses to start without a Gemini key and API keys', () => {
  refuses({ NODE_ENV: 'production', FERRY_API_KEYS: 'k:t' }, 'GEMINI_API_KEY');
  refuses({ NODE_ENV: 'production', GEMINI_API_KEY: 'g' }, 'FERRY_API_KEYS');
  const c = loadConfig({ NODE_ENV: 'production', GEMINI_API_KEY: 'g', FERRY_API_KEYS: 'k1:alpha, k2:beta' });
  assert.deepEqual(
    [...c.apiKeys],
    [
      ['k1', 'alpha'],
      ['k2', 'beta'],
    ],
  );
});

test('the ferry command prints a one-line message, not a stack trace, for bad configuration', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'all'], {
    env: { ...process.env, PORT: 'eighty' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^ferry: configuration error: PORT: expected a whole number/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('the Redis prefix: "ferry" on a named or production Redis; in development on the local one, the data directory’s own', () => {
  assert.equal(loadConfig({ NODE_ENV: 'production', GEMINI_API_KEY: 'g', FERRY_API_KEYS: 'k:t' }).prefix, 'ferry');
  assert.equal(loadConfig({ REDIS_URL: 'redis://10.0.0.5:6379' }).prefix, 'ferry');
  assert.equal(loadConfig({ FERRY_REDIS_PREFIX: 'mine' }).prefix, 'mine');
  const one = loadConfig({ FERRY_DATA_DIR: '/srv/checkout-1/data' }).prefix;
  assert.equal(loadConfig({ FERRY_DATA_DIR: '/srv/checkout-1/data' }).prefix, one, 'the processes of one checkout share it');
  assert.notEqual(loadConfig({ FERRY_DATA_DIR: '/srv/checkout-2/data' }).prefix, one, 'two checkouts never share work');
});
