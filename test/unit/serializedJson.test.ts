import { expect } from 'chai';
import { jsonOf, serializeOnce } from '../../shared/serializedJson.js';

describe('serialised JSON, remembered', () => {
  it('answers the text made by serializeOnce for that very object, and serialises any other object', () => {
    const payment = { id: 'pay_1', amount: '0.05' };
    const text = serializeOnce(payment);
    expect(text).to.equal('{"id":"pay_1","amount":"0.05"}');
    expect(jsonOf(payment)).to.equal(text);
    // Remembered by identity, not by content: the text is reused as is, never a neighbour's.
    Object.assign(payment, { amount: '1' });
    expect(jsonOf(payment)).to.equal(text);
    expect(jsonOf({ id: 'pay_1', amount: '1' })).to.equal('{"id":"pay_1","amount":"1"}');
    expect(jsonOf([1, 'a'])).to.equal('[1,"a"]');
  });
});
