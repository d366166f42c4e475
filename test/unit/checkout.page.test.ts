import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { checkoutState } from '../../api/checkout/checkoutState.js';
import { escapeHtml, html, trusted } from '../../api/checkout/html.js';
import type { CheckoutPayment } from '../../api/checkout/loadCheckout.js';
import { CHECKOUT_CSP, formatTimeLeft, renderCheckoutPage } from '../../api/checkout/page.js';

const payment: CheckoutPayment = {
  id: 'pay_AAAAAAAAAAAAAAAAAAAAAA',
  state: 'pending',
  status: 'pending',
  exception: null,
  merchantName: 'Corner Coffee',
  chainId: 8453,
  chainName: 'Base',
  currency: 'USDC',
  tokenAddress: '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913',
  amount: '25.5',
  amountReceived: '0',
  amountDue: '25.5',
  partiallyPaid: false,
  address: '0x9858EfFD232B4033E47d90003D41EC34EcaEda94',
  paymentUri: 'ethereum:0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913@8453/transfer?address=0x9858EfFD232B4033E47d90003D41EC34EcaEda94&uint256=25500000',
  confirmations: 0,
  confirmationsRequired: 10,
  expiresAt: new Date('2026-11-26T12:15:00Z'),
  successUrl: 'https://shop.example/thanks?a=1&b=2',
  cancelUrl: null,
};

describe('checkout page rendering', () => {
  it('maps status and exception to what the customer is told', () => {
    expect(checkoutState('pending', null)).to.equal('pending');
    expect(checkoutState('confirming', 'underpaid')).to.equal('confirming');
    expect(checkoutState('confirmed', 'overpaid')).to.equal('confirmed');
    expect(checkoutState('settled', null)).to.equal('confirmed');
    expect(checkoutState('expired', null)).to.equal('expired');
    expect(checkoutState('expired', 'underpaid')).to.equal('underpaid');
    expect(checkoutState('expired', 'paid_late')).to.equal('late');
    expect(checkoutState('canceled', null)).to.equal('canceled');
  });

  it('escapes interpolated text but keeps trusted markup', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).to.equal('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    expect(html`<p>${'<b>'}${trusted('<i>ok</i>')}${['&', 1]}${null}${false}</p>`.value).to.equal('<p>&lt;b&gt;<i>ok</i>&amp;1</p>');
  });

  it('formats the countdown as the browser script does', () => {
    expect(formatTimeLeft(-5000)).to.equal('0:00');
    expect(formatTimeLeft(59_999)).to.equal('0:59');
    expect(formatTimeLeft(14 * 60_000 + 5000)).to.equal('14:05');
    expect(formatTimeLeft(3 * 3600_000 + 62_000)).to.equal('3:01:02');
    expect(formatTimeLeft(2 * 86400_000 + 3600_000)).to.equal('2d 01:00:00');
  });

  it('inlines exactly the script and style its CSP allows, and nothing else', async () => {
    const page = await renderCheckoutPage(payment, new Date('2026-11-26T12:00:00Z'));
    const scripts = [...page.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    const styles = [...page.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]);
    expect(scripts).to.have.length(1);
    expect(styles).to.have.length(1);
    const hash = (t: string) => `'sha256-${createHash('sha256').update(t).digest('base64')}'`;
    expect(CHECKOUT_CSP).to.include(`script-src ${hash(scripts[0])}`);
    expect(CHECKOUT_CSP).to.include(`style-src ${hash(styles[0])}`);
    expect(page).to.not.match(/\sstyle=|\son[a-z]+=|<script src|<link /); // inline attributes would be blocked
    expect(page).to.include('<time id="countdown" datetime="2026-11-26T12:15:00.000Z">15:00</time>');
    expect(page).to.include('href="https://shop.example/thanks?a=1&amp;b=2"');
    expect(page).to.not.include('id="cancel-link"');
    expect(page).to.include('<span id="token-address">0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913</span>');
  });
});
