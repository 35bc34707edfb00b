// Configuration is read in one place (src/config.ts): defaults, parsing, and
// a clear error naming the variable for every bad value. No server needed.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';

describe('loadConfig', () => {
  test('defaults: ./storage on 127.0.0.1:7070, fs storage, auth on, unsafe files warned about, gc and analysis at their own defaults', () => {
    const config = loadConfig({});
    assert.equal(config.dataDir, path.resolve('./storage'));
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 7070);
    assert.equal(config.s3, undefined);
    assert.equal(config.auth, true);
    assert.equal(config.unsafePolicy, 'warn');
    assert.equal(config.anonymousRead, false);
    assert.equal(config.rateLimit, 6000);
    assert.equal(config.maxUploadBytes, 100 * 1024 ** 3);
    assert.equal(config.webhookAllowPrivate, false);
    assert.deepEqual(config.gc, { graceSeconds: undefined, uploadTtlSeconds: undefined });
    assert.deepEqual(config.analysis, { workers: undefined, fileSeconds: undefined, publishSeconds: undefined, memoryMb: undefined });
  });

  test('every variable is parsed into its typed field', () => {
    const config = loadConfig({
      CAIRN_DATA_DIR: '/tmp/cairn-config-test',
      CAIRN_HOST: '0.0.0.0',
      CAIRN_PORT: '0',
      CAIRN_AUTH: 'off',
      CAIRN_UNSAFE: 'reject',
      CAIRN_ANONYMOUS_READ: 'yes',
      CAIRN_MAX_UPLOAD_BYTES: '0',
      CAIRN_RATE_LIMIT: '0',
      CAIRN_WEBHOOK_ALLOW_PRIVATE: 'true',
      CAIRN_ANALYSIS_WORKERS: '3',
      CAIRN_ANALYSIS_FILE_SECONDS: '5',
      CAIRN_ANALYSIS_PUBLISH_SECONDS: '60',
      CAIRN_ANALYSIS_MEMORY_MB: '512',
      CAIRN_GC_GRACE: '30m',
      CAIRN_UPLOAD_TTL: '2d',
      CAIRN_PRESIGN_SECONDS: '5m',
      CAIRN_S3_BUCKET: 'models',
      CAIRN_S3_ENDPOINT: 'http://127.0.0.1:9000',
      CAIRN_S3_PREFIX: 'cairn/',
    });
    assert.equal(config.dataDir, '/tmp/cairn-config-test');
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.port, 0);
    assert.equal(config.auth, false);
    assert.equal(config.unsafePolicy, 'reject');
    assert.equal(config.anonymousRead, true);
    assert.equal(config.maxUploadBytes, undefined, '0: no limit');
    assert.equal(config.rateLimit, 0);
    assert.equal(config.webhookAllowPrivate, true);
    assert.deepEqual(config.analysis, { workers: 3, fileSeconds: 5, publishSeconds: 60, memoryMb: 512 });
    assert.deepEqual(config.gc, { graceSeconds: 1800, uploadTtlSeconds: 172800 });
    assert.equal(config.presignSeconds, 300);
    // an endpoint implies path-style addressing unless told otherwise
    assert.deepEqual(config.s3, { bucket: 'models', endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', forcePathStyle: true, prefix: 'cairn/' });
  });

  test('a bad value is a ConfigError that names the variable and the value', () => {
    const cases: Array<[string, string]> = [
      ['CAIRN_PORT', '70000'],
      ['CAIRN_PORT', 'http'],
      ['CAIRN_AUTH', 'maybe'],
      ['CAIRN_UNSAFE', 'allow'],
      ['CAIRN_ANONYMOUS_READ', 'sometimes'],
      ['CAIRN_MAX_UPLOAD_BYTES', '-1'],
      ['CAIRN_RATE_LIMIT', '1.5'],
      ['CAIRN_WEBHOOK_ALLOW_PRIVATE', '2'],
      ['CAIRN_ANALYSIS_WORKERS', '0'],
      ['CAIRN_ANALYSIS_MEMORY_MB', 'lots'],
      ['CAIRN_GC_GRACE', 'an hour'],
      ['CAIRN_UPLOAD_TTL', '-5m'],
      ['CAIRN_PRESIGN_SECONDS', '0'],
      ['CAIRN_PRESIGN_SECONDS', '8d'], // longer than a SigV4 presigned URL may live
    ];
    for (const [name, value] of cases) {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (err: unknown) => err instanceof ConfigError && err.message.includes(name) && err.message.includes(JSON.stringify(value)),
        `${name}=${value}`,
      );
    }
    assert.throws(() => loadConfig({ CAIRN_S3_BUCKET: 'b', CAIRN_S3_FORCE_PATH_STYLE: 'perhaps' }), /CAIRN_S3_FORCE_PATH_STYLE/);
  });
});
