/**
 * Compiles DevUSDC.sol with the solc-js from node_modules (offline) and writes
 * the committed artifact DevUSDC.json. Run after editing the contract:
 *
 *   npx tsx scripts/devstack/compile-token.ts
 *
 * test/unit/devToken.artifact.test.ts recompiles with compileDevUSDC() and fails
 * if the committed JSON no longer matches the source.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const DEV_USDC_SOURCE_PATH = path.join(here, 'DevUSDC.sol');
export const DEV_USDC_ARTIFACT_PATH = path.join(here, 'DevUSDC.json');

const SOURCE_NAME = 'DevUSDC.sol';
const CONTRACT_NAME = 'DevUSDC';
// paris: no PUSH0, so the same bytecode also deploys on chains/simulators that
// lag behind Shanghai (ganache rejects PUSH0).
const SETTINGS = {
  evmVersion: 'paris',
  optimizer: { enabled: true, runs: 200 },
} as const;

export interface DevUSDCArtifact {
  contractName: string;
  sourceName: string;
  compiler: { version: string; settings: typeof SETTINGS };
  abi: unknown[];
  bytecode: string;
}

interface SolcOutput {
  errors?: { severity: 'error' | 'warning' | 'info'; formattedMessage: string }[];
  contracts?: Record<string, Record<string, { abi: unknown[]; evm: { bytecode: { object: string } } }>>;
}

export function compileDevUSDC(): DevUSDCArtifact {
  const require = createRequire(import.meta.url);
  // Loaded lazily: soljson is an ~9 MB emscripten blob that takes a moment to initialise.
  const solc = require('solc') as { version(): string; compile(input: string, callbacks: object): string };

  const input = {
    language: 'Solidity',
    // Unit names are relative (not absolute paths) because they end up in the
    // metadata hash inside the bytecode; this keeps the artifact identical on
    // every machine and checkout location.
    sources: { [SOURCE_NAME]: { content: fs.readFileSync(DEV_USDC_SOURCE_PATH, 'utf8') } },
    settings: {
      ...SETTINGS,
      outputSelection: { [SOURCE_NAME]: { [CONTRACT_NAME]: ['abi', 'evm.bytecode.object'] } },
    },
  };

  // Only package imports are allowed, resolved from this repo's node_modules;
  // solc never sees the filesystem otherwise.
  const findImports = (importPath: string): { contents: string } | { error: string } => {
    if (!importPath.startsWith('@openzeppelin/')) return { error: `import not allowed: ${importPath}` };
    try {
      return { contents: fs.readFileSync(require.resolve(importPath), 'utf8') };
    } catch (err) {
      return { error: `cannot resolve ${importPath}: ${(err as Error).message}` };
    }
  };

  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports })) as SolcOutput;
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) {
    throw new Error(`solc failed:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  }
  const contract = output.contracts?.[SOURCE_NAME]?.[CONTRACT_NAME];
  if (!contract) throw new Error(`solc produced no ${CONTRACT_NAME} contract`);

  return {
    contractName: CONTRACT_NAME,
    sourceName: `scripts/devstack/${SOURCE_NAME}`,
    compiler: { version: solc.version(), settings: SETTINGS },
    abi: contract.abi,
    bytecode: `0x${contract.evm.bytecode.object}`,
  };
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const t0 = performance.now();
  const artifact = compileDevUSDC();
  fs.writeFileSync(DEV_USDC_ARTIFACT_PATH, `${JSON.stringify(artifact, null, 2)}\n`);
  console.log(
    `wrote ${path.relative(process.cwd(), DEV_USDC_ARTIFACT_PATH)} (solc ${artifact.compiler.version}, ` +
      `${(artifact.bytecode.length - 2) / 2} bytes, ${Math.round(performance.now() - t0)} ms)`,
  );
}
