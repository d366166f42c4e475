import { expect } from 'chai';
import { loadConfig } from '../../shared/config.js';
import { minimalEnv } from '../support/configEnv.js';
import { RETRY_AFTER_MAX_SECONDS, decideRetry, isSuccessStatus, parseRetryAfter } from '../../shared/webhooks/retryPolicy.js';

describe('webhooks.retryPolicy', () => {
  const now = new Date('2026-11-26T12:00:00Z');
  const schedule = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];

  describe('parseRetryAfter', () => {
    it('reads delay-seconds', () => {
      expect(parseRetryAfter('120', now)).to.equal(120);
      expect(parseRetryAfter(' 0 ', now)).to.equal(0);
      expect(parseRetryAfter(['7', '9'], now)).to.equal(7);
    });
    it('reads an HTTP date, relative to now, never negative', () => {
      expect(parseRetryAfter('Thu, 26 Nov 2026 12:01:30 GMT', now)).to.equal(90);
      expect(parseRetryAfter('Thu, 26 Nov 2026 11:00:00 GMT', now)).to.equal(0);
    });
    it('caps what a receiver can ask for', () => {
      expect(parseRetryAfter('999999999', now)).to.equal(RETRY_AFTER_MAX_SECONDS);
      expect(parseRetryAfter('Fri, 01 Jan 2100 00:00:00 GMT', now)).to.equal(RETRY_AFTER_MAX_SECONDS);
    });
    it('answers null for absent or unreadable values', () => {
      for (const bad of [undefined, '', '-5', '1.5', 'soon', 'Thu, 99 Foo 2026']) expect(parseRetryAfter(bad, now), String(bad)).to.equal(null);
    });
  });

  describe('decideRetry', () => {
    it('follows the schedule: attempt n waits schedule[n-1], and gives up after 1 + schedule.length attempts', () => {
      schedule.forEach((delay, i) => {
        expect(decideRetry({ attemptInRound: i + 1, schedule, statusCode: 500, retryAfterSeconds: null })).to.deep.equal({ retry: true, delaySeconds: delay });
      });
      expect(decideRetry({ attemptInRound: schedule.length + 1, schedule, statusCode: 500, retryAfterSeconds: null })).to.deep.equal({ retry: false });
    });
    it('the default schedule (WEBHOOK_RETRY_SCHEDULE) is 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h; other options default as documented', () => {
      const config = loadConfig(minimalEnv);
      expect(config).to.include({ webhookTimeoutMs: 10_000, allowPrivateWebhookUrls: false, webhookEndpointConcurrency: 3, webhookDisableAfterDays: 5 });
      expect(config.webhookRetrySchedule).to.deep.equal([5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600]);
    });
    it('honours Retry-After on 429 and 503 only, still using up an attempt', () => {
      expect(decideRetry({ attemptInRound: 1, schedule, statusCode: 429, retryAfterSeconds: 60 })).to.deep.equal({ retry: true, delaySeconds: 60 });
      expect(decideRetry({ attemptInRound: 2, schedule, statusCode: 503, retryAfterSeconds: 7 })).to.deep.equal({ retry: true, delaySeconds: 7 });
      expect(decideRetry({ attemptInRound: 1, schedule, statusCode: 500, retryAfterSeconds: 60 })).to.deep.equal({ retry: true, delaySeconds: 5 });
      expect(decideRetry({ attemptInRound: 1, schedule, statusCode: 429, retryAfterSeconds: null })).to.deep.equal({ retry: true, delaySeconds: 5 });
      expect(decideRetry({ attemptInRound: 10, schedule, statusCode: 429, retryAfterSeconds: 1 })).to.deep.equal({ retry: false });
    });
  });

  it('only 2xx is success', () => {
    expect([200, 201, 204, 299].every(isSuccessStatus)).to.equal(true);
    expect([null, 199, 301, 304, 400, 410, 500].some(isSuccessStatus)).to.equal(false);
  });
});
