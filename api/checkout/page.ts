import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { html, trusted, type TrustedHtml } from './html.js';
import { FINAL_CHECKOUT_STATES } from './checkoutState.js';
import type { CheckoutPayment } from './loadCheckout.js';

// The page's only script and stylesheet, inlined, and allowed by their hashes: no nonce to thread through, no
// 'unsafe-inline', nothing loaded from anywhere (so it works offline and leaks no visit to a third party).
const script = readFileSync(new URL('./assets/checkout.js', import.meta.url), 'utf8');
const style = readFileSync(new URL('./assets/checkout.css', import.meta.url), 'utf8');
const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

export const CHECKOUT_CSP = [
  "default-src 'none'",
  `script-src ${sha256(script)}`,
  `style-src ${sha256(style)}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers every checkout response carries (page, 404 page, status JSON). */
export const CHECKOUT_SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CHECKOUT_CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  // The payment id in the URL is the page's only key: never send it to the merchant's site or a wallet's.
  'Referrer-Policy': 'no-referrer',
};

/** Countdown text as the browser script writes it (m:ss, h:mm:ss, Nd hh:mm:ss), for the first paint. */
export function formatTimeLeft(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  const clock = `${h || d ? pad(m) : String(m)}:${pad(s % 60)}`;
  if (d) return `${d}d ${pad(h)}:${clock}`;
  return h ? `${h}:${clock}` : clock;
}

function layout(title: string, body: TrustedHtml, opts: { refreshSeconds?: number } = {}): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>${title}</title>
<style>${trusted(style)}</style>
${opts.refreshSeconds ? html`<noscript><meta http-equiv="refresh" content="${opts.refreshSeconds}"></noscript>` : ''}
</head>
<body>
${body}
</body>
</html>
`.value;
}

/** The QR code of the EIP-681 URI as inline SVG: generated here, so no image request and nothing to allow in the CSP. */
export async function qrSvg(uri: string): Promise<TrustedHtml> {
  // Imported on first use (~60 files): only checkout pages need it, and API start-up should not wait for it.
  const { default: QRCode } = await import('qrcode');
  const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 4 });
  return trusted(svg.replace('<svg ', '<svg aria-hidden="true" focusable="false" '));
}

export async function renderCheckoutPage(p: CheckoutPayment, now: Date): Promise<string> {
  const asset = p.currency;
  const finality = p.confirmationsRequired > 0 ? 'blocks' : 'tag';
  const shownConfirmations = p.confirmationsRequired > 0 ? Math.min(p.confirmations, p.confirmationsRequired) : p.confirmations;
  const body = html`<main id="checkout" data-state="${p.state}" data-partial="${String(p.partiallyPaid)}" data-finality="${finality}"
  data-status-url="/pay/${p.id}/status" data-expires-at="${p.expiresAt.toISOString()}" data-server-time="${now.getTime()}">
<div class="card">
  <header>
    <p class="merchant">Pay <strong id="merchant">${p.merchantName}</strong></p>
    <h1><span id="amount">${p.amount}</span> <span id="currency">${asset}</span></h1>
    <p class="chain">on <span id="chain">${p.chainName}</span> (chain id ${p.chainId})</p>
  </header>

  <section class="status" aria-labelledby="status-heading">
    <h2 id="status-heading" class="visually-hidden">Payment status</h2>
    <p class="st st-pending" id="st-pending">Waiting for your payment.</p>
    <p class="st st-confirming" id="st-confirming">
      <span class="when-whole">Payment received.</span>
      <span class="when-partial">Received <span class="js-received">${p.amountReceived}</span> ${asset}; <strong><span class="js-due">${p.amountDue}</span> ${asset}</strong> still due.</span>
      <span class="confs-count">Confirmations: <span class="js-confs">${shownConfirmations}</span> of <span class="js-confs-required">${p.confirmationsRequired}</span>.</span>
      <span class="confs-final">Waiting for the chain to finalise it.</span>
    </p>
    <p class="st st-confirmed" id="st-confirmed"><strong>Payment confirmed.</strong> Thank you! ${p.merchantName} has been paid.</p>
    <p class="st st-underpaid" id="st-underpaid"><strong>Underpaid.</strong> The payment expired after receiving
      <span class="js-received">${p.amountReceived}</span> ${asset}: <strong><span class="js-due">${p.amountDue}</span> ${asset}</strong> is still due.
      Contact ${p.merchantName} to settle the difference.</p>
    <p class="st st-late" id="st-late"><strong>Paid after the deadline.</strong> ${p.merchantName} will review the payment.</p>
    <p class="st st-expired" id="st-expired"><strong>This payment has expired.</strong> Do not send funds to this address.</p>
    <p class="st st-canceled" id="st-canceled"><strong>This payment was canceled.</strong> Do not send funds to this address.</p>
    <p class="st st-closed" id="st-closed"><strong>This payment is closed.</strong> Do not send funds to this address.</p>
    <p class="countdown-line">Time left: <time id="countdown" datetime="${p.expiresAt.toISOString()}">${formatTimeLeft(p.expiresAt.getTime() - now.getTime())}</time></p>
  </section>
  <p id="announce" class="visually-hidden" role="status" aria-live="polite"></p>

  <section class="pay" aria-label="How to pay">
    <div class="qr-block">
      <div class="qr" id="qr" role="img" aria-label="QR code of the payment request for your wallet">${await qrSvg(p.paymentUri)}</div>
      <p>Scan with your wallet app</p>
    </div>
    <p class="send" id="send-label">Send <span class="when-whole">exactly</span><span class="when-partial">the remaining</span>
      <strong><span class="when-whole">${p.amount}</span><span class="when-partial js-due">${p.amountDue}</span> ${asset}</strong>
      on ${p.chainName} to this address:</p>
    <div class="address-row">
      <code class="address" id="address" aria-labelledby="send-label">${p.address}</code>
      <button type="button" id="copy" aria-label="Copy address" hidden>Copy</button>
    </div>
    <p class="copied" id="copied" aria-live="polite"></p>
    ${p.tokenAddress ? html`<p class="token">${asset} token contract: <span id="token-address">${p.tokenAddress}</span></p>` : ''}
    <a class="button wallet" id="open-wallet" href="${p.paymentUri}">Open in wallet</a>
  </section>

  <nav class="actions" aria-label="Back to the shop">
    ${p.cancelUrl ? html`<a class="button cancel" id="cancel-link" href="${p.cancelUrl}">Cancel and return to ${p.merchantName}</a>` : ''}
    ${p.successUrl ? html`<a class="button primary success" id="success-link" href="${p.successUrl}">Return to ${p.merchantName}</a>` : ''}
  </nav>
</div>
<footer>Payment ${p.id}</footer>
</main>
<script>${trusted(script)}</script>`;
  // Without JavaScript the page still follows the payment, by reloading itself while the outcome is open.
  const open = !FINAL_CHECKOUT_STATES.includes(p.state);
  return layout(`Pay ${p.merchantName}: ${p.amount} ${asset}`, body, { refreshSeconds: open ? 15 : undefined });
}

export function renderNotFoundPage(): string {
  return layout(
    'Payment not found',
    html`<main class="notfound"><h1>Payment not found</h1><p>Check the link you were given, or ask the shop for a new one.</p></main>`,
  );
}

export function renderTooManyRequestsPage(retryAfterSeconds: number): string {
  return layout(
    'Too many requests',
    html`<main class="notfound"><h1>Too many requests</h1><p>Please wait ${retryAfterSeconds} seconds and reload the page.</p></main>`,
  );
}
