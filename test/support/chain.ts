import { Contract, JsonRpcProvider, type HDNodeWallet } from 'ethers';
import { devAccounts } from '../../scripts/devstack/chain.js';

/** Talking to the test dev chain the way a customer's wallet (or a test of reorgs) would. */
export function chainClient(rpcUrl: string, usdcAddress: string) {
  const provider = new JsonRpcProvider(rpcUrl, undefined, { staticNetwork: true, cacheTimeout: -1 });
  const accounts = devAccounts(10).map((a) => a.connect(provider)) as HDNodeWallet[];
  const rpc = <T = any>(method: string, params: unknown[] = []) => provider.send(method, params) as Promise<T>;
  return {
    provider,
    accounts,
    rpc,
    async mine(blocks = 1) {
      for (let i = 0; i < blocks; i++) await rpc('evm_mine');
    },
    async increaseTime(seconds: number) {
      await rpc('evm_increaseTime', [seconds]);
      await rpc('evm_mine');
    },
    /** Mines a block whose timestamp is just past `expiresAt`: the chain's clock is what expires payments. */
    async passTime(expiresAt: string | Date) {
      const target = Math.floor(new Date(expiresAt).getTime() / 1000) + 1;
      const latest = await provider.getBlock('latest');
      if (latest && latest.timestamp < target) await rpc('evm_setNextBlockTimestamp', [target]);
      await rpc('evm_mine');
    },
    async head() {
      return Number(await rpc<string>('eth_blockNumber'));
    },
    async sendEth(from: number, to: string, wei: bigint) {
      const tx = await accounts[from].sendTransaction({ to, value: wei });
      return tx.hash;
    },
    async sendUsdc(from: number, to: string, units: bigint) {
      const token = new Contract(usdcAddress, ['function transfer(address,uint256) returns (bool)'], accounts[from]);
      const tx = await token.transfer(to, units);
      return tx.hash as string;
    },
    async usdcBalance(address: string): Promise<bigint> {
      const token = new Contract(usdcAddress, ['function balanceOf(address) view returns (uint256)'], provider);
      return token.balanceOf(address);
    },
  };
}
