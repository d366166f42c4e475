import { expect } from 'chai';
import { loadConfig } from '../../shared/config.js';
import { ConfigError } from '../../shared/errors.js';
import { minimalEnv } from '../support/configEnv.js';
import { metricsAuthorized, setGasTankBalance, gasTankBalance } from '../../shared/metrics.js';
import { parseClusterUrl } from '../../shared/queues/redis.js';

const base = minimalEnv;

const errorOf = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as Error).message;
  }
  return expect.fail('expected a ConfigError');
};

describe('ops configuration (metrics, Bull Board, worker ports, shutdown grace, Redis Cluster)', () => {
  it('defaults: metrics token and Bull Board password fall back to the admin token; port 9091; grace 25 s', () => {
    const c = loadConfig(base);
    expect(c.metricsToken).to.equal(base.ADMIN_TOKEN);
    expect(c.bullBoardUser).to.equal('admin');
    expect(c.bullBoardPassword).to.equal(base.ADMIN_TOKEN);
    expect(c.workerMetricsPorts).to.deep.equal([9091, 9091]);
    expect(c.workerShutdownGraceMs).to.equal(25_000);
    expect(c.queuePrefix).to.equal('payflow');
  });

  it('WORKER_METRICS_PORT_RANGE wins over WORKER_METRICS_PORT; bad values name the variable', () => {
    expect(loadConfig({ ...base, WORKER_METRICS_PORT: '0' }).workerMetricsPorts).to.deep.equal([0, 0]);
    expect(loadConfig({ ...base, WORKER_METRICS_PORT: '9500', WORKER_METRICS_PORT_RANGE: '9091-9099' }).workerMetricsPorts).to.deep.equal([9091, 9099]);
    expect(errorOf({ ...base, WORKER_METRICS_PORT_RANGE: '9099-9091' })).to.match(/^WORKER_METRICS_PORT_RANGE/);
    expect(errorOf({ ...base, METRICS_TOKEN: 'short' })).to.match(/^METRICS_TOKEN/);
    expect(errorOf({ ...base, WORKER_SHUTDOWN_GRACE_MS: 'soon' })).to.match(/^WORKER_SHUTDOWN_GRACE_MS/);
  });

  it('a redis+cluster:// URL needs a hash-tagged queue prefix, and defaults to {payflow}', () => {
    const url = 'redis+cluster://127.0.0.1:7000,127.0.0.1:7001';
    expect(loadConfig({ ...base, REDIS_URL: url }).queuePrefix).to.equal('{payflow}');
    expect(loadConfig({ ...base, REDIS_URL: url, QUEUE_PREFIX: '{shop}' }).queuePrefix).to.equal('{shop}');
    expect(errorOf({ ...base, REDIS_URL: url, QUEUE_PREFIX: 'payflow' })).to.match(/^QUEUE_PREFIX: .*hash tag/);
    expect(errorOf({ ...base, REDIS_URL: 'redis+cluster://nohost' })).to.match(/^REDIS_URL/);
    expect(parseClusterUrl('rediss+cluster://u:p%40ss@a.example:7000,[::1]:7001')).to.deep.equal({
      nodes: [{ host: 'a.example', port: 7000 }, { host: '::1', port: 7001 }],
      username: 'u',
      password: 'p@ss',
      tls: true,
    });
    expect(parseClusterUrl('redis://127.0.0.1:6379')).to.equal(undefined);
  });

  it('metrics access: Bearer token or Basic with the token as password; nothing else', () => {
    const token = 't'.repeat(24);
    expect(metricsAuthorized(`Bearer ${token}`, token)).to.equal(true);
    expect(metricsAuthorized(`Basic ${Buffer.from(`prometheus:${token}`).toString('base64')}`, token)).to.equal(true);
    expect(metricsAuthorized(`Basic ${Buffer.from(`${token}:x`).toString('base64')}`, token)).to.equal(false);
    expect(metricsAuthorized(`Bearer ${token}x`, token)).to.equal(false);
    expect(metricsAuthorized(undefined, token)).to.equal(false);
  });

  it('gas tank gauge from wei, exactly for whole and fractional amounts', async () => {
    setGasTankBalance(31337, 1_500_000_000_000_000_000n);
    const { values } = await gasTankBalance.get();
    expect(values.find((v) => v.labels.chain_id === '31337')?.value).to.equal(1.5);
  });
});
