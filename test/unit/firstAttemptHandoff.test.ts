import { expect } from 'chai';
import { decodeHandoff, encodeHandoff } from '../../shared/webhooks/firstAttemptHandoff.js';

describe('webhooks.firstAttemptHandoff', () => {
  it('writes a delivery id alone, or with its request id after one space, and reads both back', () => {
    expect(encodeHandoff(['whd_1', null])).to.equal('whd_1');
    expect(encodeHandoff(['whd_1', 'req-1.a_B'])).to.equal('whd_1 req-1.a_B');
    expect(decodeHandoff('whd_1')).to.deep.equal(['whd_1', null]);
    expect(decodeHandoff('whd_1 req-1.a_B')).to.deep.equal(['whd_1', 'req-1.a_B']);
    const uuid = '0b6f3f7e-8a64-4a3e-9d53-2a1f0c7f9e11';
    expect(decodeHandoff(encodeHandoff(['whd_2', uuid]))).to.deep.equal(['whd_2', uuid]);
  });
});
