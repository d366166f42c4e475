import { ContractFactory, JsonRpcProvider, type InterfaceAbi } from 'ethers';
import artifact from './DevUSDC.json' with { type: 'json' };
import { devAccounts } from './chain.js';

/** ABI of the dev USDC (OpenZeppelin ERC20, 6 decimals). */
export const DEV_USDC_ABI: InterfaceAbi = artifact.abi as InterfaceAbi;
export const DEV_USDC_BYTECODE: string = artifact.bytecode;
/** What the constructor mints to each holder: 1,000,000 USDC in base units. */
export const DEV_USDC_INITIAL_BALANCE = 1_000_000n * 10n ** 6n;

/**
 * Deploys the dev USDC from dev account 0 and mints 1,000,000 USDC to each
 * holder. Resolves once the deployment is mined: at once on an automining
 * chain, at the next block with interval mining.
 */
export async function deployDevToken(
  rpcUrl: string,
  holders: string[],
): Promise<{ address: string; symbol: 'USDC'; decimals: 6 }> {
  // ethers polls every 4 s by default, which would add seconds per deployment
  // on an interval-mined chain; a local node is cheap to poll.
  const provider = new JsonRpcProvider(rpcUrl, undefined, { pollingInterval: 100 });
  try {
    const deployer = devAccounts(1)[0].connect(provider);
    const factory = new ContractFactory(DEV_USDC_ABI, DEV_USDC_BYTECODE, deployer);
    const contract = await factory.deploy(holders);
    const receipt = await contract.deploymentTransaction()!.wait();
    if (!receipt || receipt.status !== 1 || !receipt.contractAddress) {
      throw new Error(`DevUSDC deployment failed (tx ${contract.deploymentTransaction()?.hash})`);
    }
    return { address: receipt.contractAddress, symbol: 'USDC', decimals: 6 };
  } finally {
    // Otherwise its network-detection and polling timers keep the process alive.
    provider.destroy();
  }
}
