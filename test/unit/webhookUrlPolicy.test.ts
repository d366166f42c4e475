import { expect } from 'chai';
import { checkWebhookUrlWithDns, isPublicAddress } from '../../shared/webhooks/urlPolicy.js';

describe('webhooks.urlPolicy', () => {
  it('isPublicAddress: refuses loopback, private, link-local, CGNAT, metadata, unspecified and mapped addresses', () => {
    for (const ip of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fc00::1', '::ffff:127.0.0.1', '224.0.0.1']) {
      expect(isPublicAddress(ip), ip).to.equal(false);
    }
    for (const ip of ['93.184.216.34', '8.8.8.8', '2606:4700::1111']) expect(isPublicAddress(ip), ip).to.equal(true);
  });

  it('checkWebhookUrlWithDns: refuses private IP literals and names that resolve inside, unless private targets are allowed', async () => {
    for (const url of ['http://127.0.0.1:8080/x', 'http://[::1]/x', 'http://169.254.169.254/latest/meta-data', 'http://100.64.1.1/', 'https://localhost/hook', 'http://10.0.0.5/']) {
      const verdict = await checkWebhookUrlWithDns(url, false);
      expect(verdict.allowed, url).to.equal(false);
    }
    expect(await checkWebhookUrlWithDns('https://93.184.216.34/hook', false)).to.deep.equal({ allowed: true });
    expect(await checkWebhookUrlWithDns('http://127.0.0.1:8080/x', true)).to.deep.equal({ allowed: true });
    // The metadata service is never a webhook target, even in local development.
    expect((await checkWebhookUrlWithDns('http://169.254.169.254/', true)).allowed).to.equal(false);
  });
});
