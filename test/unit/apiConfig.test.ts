import { expect } from 'chai';
import { loadConfig } from '../../shared/config.js';
import { ConfigError } from '../../shared/errors.js';
import { minimalEnv } from '../support/configEnv.js';
import { hashRequest } from '../../api/middleware/idempotency.js';

const base = minimalEnv;

const errorFor = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).variable;
  }
  return undefined;
};

describe('config: API options', () => {
  it('has the documented defaults', () => {
    const c = loadConfig(base);
    expect(c).to.include({ rateLimitRead: 3000, rateLimitWrite: 1200, rateLimitPerIp: 6000, rateLimitWindowMs: 60_000, apiKeyCacheTtlMs: 5000, idempotencyRetentionHours: 24, trustProxyHops: 1 });
    expect(c.corsOrigins).to.deep.equal([]);
    expect(c.tlsCertFile).to.equal(undefined);
  });

  it('refuses bad values naming the variable', () => {
    expect(errorFor({ ...base, RATE_LIMIT_READ: '0' })).to.equal('RATE_LIMIT_READ');
    expect(errorFor({ ...base, RATE_LIMIT_WRITE: 'lots' })).to.equal('RATE_LIMIT_WRITE');
    expect(errorFor({ ...base, IDEMPOTENCY_RETENTION_HOURS: '12' })).to.equal('IDEMPOTENCY_RETENTION_HOURS');
    expect(errorFor({ ...base, CORS_ORIGINS: 'https://shop.example/path' })).to.equal('CORS_ORIGINS');
    expect(errorFor({ ...base, TLS_CERT_FILE: '/etc/hostname' })).to.equal('TLS_KEY_FILE');
    expect(errorFor({ ...base, TLS_CERT_FILE: '/nonexistent.pem', TLS_KEY_FILE: '/nonexistent.pem' })).to.equal('TLS_CERT_FILE');
  });

  it('parses CORS_ORIGINS', () => {
    expect(loadConfig({ ...base, CORS_ORIGINS: 'https://a.example, http://localhost:5173' }).corsOrigins).to.deep.equal(['https://a.example', 'http://localhost:5173']);
    expect(loadConfig({ ...base, CORS_ORIGINS: '*' }).corsOrigins).to.deep.equal(['*']);
  });
});

describe('idempotency.hashRequest', () => {
  it('ignores JSON key order and tells different requests apart', () => {
    const a = hashRequest('POST', '/api/v1/payments', { amount: '1', metadata: { x: 1, y: [1, { b: 2, a: 1 }] } });
    expect(hashRequest('POST', '/api/v1/payments', { metadata: { y: [1, { a: 1, b: 2 }], x: 1 }, amount: '1' })).to.equal(a);
    expect(hashRequest('POST', '/api/v1/payments', { amount: '2', metadata: { x: 1, y: [1, { b: 2, a: 1 }] } })).not.to.equal(a);
    expect(hashRequest('POST', '/api/v1/payments/x/cancel', { amount: '1', metadata: { x: 1, y: [1, { b: 2, a: 1 }] } })).not.to.equal(a);
    expect(hashRequest('POST', '/p', { a: [1, 2] })).not.to.equal(hashRequest('POST', '/p', { a: [2, 1] }));
  });
});
