/**
 * `npm run demo:pay -- <payment id> [--amount <decimal>] [--account <n>]`
 * Pays a payment on the local dev chain from dev account n (default 1), with the amount still due unless
 * --amount says otherwise (to try under- and overpayments). Reads the payment through the API with the demo key.
 */
import { parseArgs } from 'node:util';
import { Contract, JsonRpcProvider, parseUnits } from 'ethers';
import { devAccounts } from './devstack/chain.js';
import { loadOrCreateSecrets, readLocalChains } from './localStack.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { amount: { type: 'string' }, account: { type: 'string', default: '1' } },
});
const paymentId = positionals[0];
if (!paymentId) {
  process.stderr.write('usage: npm run demo:pay -- <payment id> [--amount 0.01] [--account 1]\n');
  process.exit(2);
}
const apiBase = process.env.PAYFLOW_API_URL ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`;
const { demoApiKey } = loadOrCreateSecrets();
const res = await fetch(`${apiBase}/api/v1/payments/${encodeURIComponent(paymentId)}`, {
  headers: { authorization: `Bearer ${process.env.PAYFLOW_API_KEY ?? demoApiKey}` },
});
if (!res.ok) {
  process.stderr.write(`payflow: cannot read payment ${paymentId}: HTTP ${res.status} ${await res.text()}\n`);
  process.exit(1);
}
const payment = (await res.json()) as { address: string; amount_due: string; currency: string; chain_id: number; token_address: string | null };
const chain = readLocalChains().find((c) => c.chain_id === payment.chain_id);
if (!chain) {
  process.stderr.write(`payflow: chain ${payment.chain_id} is not the local dev chain\n`);
  process.exit(1);
}
const provider = new JsonRpcProvider(chain.rpc_url, undefined, { staticNetwork: true });
const payer = devAccounts(10)[Number(values.account)].connect(provider);
const amount = values.amount ?? payment.amount_due;
let txHash: string;
if (payment.token_address) {
  const token = chain.tokens.find((t) => t.address.toLowerCase() === payment.token_address!.toLowerCase())!;
  const erc20 = new Contract(token.address, ['function transfer(address to, uint256 amount) returns (bool)'], payer);
  const tx = await erc20.transfer(payment.address, parseUnits(amount, token.decimals));
  txHash = tx.hash;
} else {
  const tx = await payer.sendTransaction({ to: payment.address, value: parseUnits(amount, 18) });
  txHash = tx.hash;
}
process.stdout.write(`sent ${amount} ${payment.currency} from ${payer.address} to ${payment.address}\n  tx ${txHash}\n`);
process.stdout.write(`watch it: curl -s ${apiBase}/api/v1/payments/${paymentId} -H 'Authorization: Bearer <api key>'\n`);
