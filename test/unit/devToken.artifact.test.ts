import fs from 'node:fs';
import { expect } from 'chai';
import {
  compileDevUSDC,
  DEV_USDC_ARTIFACT_PATH,
  type DevUSDCArtifact,
} from '../../scripts/devstack/compile-token.js';

describe('DevUSDC artifact', function () {
  // solc-js (emscripten) needs ~1-2 s to load and compile.
  this.timeout(30_000);

  it('matches a fresh compile of DevUSDC.sol (regenerate: npx tsx scripts/devstack/compile-token.ts)', function () {
    const committed = JSON.parse(fs.readFileSync(DEV_USDC_ARTIFACT_PATH, 'utf8')) as DevUSDCArtifact;
    const fresh = compileDevUSDC();
    expect(fresh.compiler.version, 'solc version').to.equal(committed.compiler.version);
    expect(fresh.abi, 'abi').to.deep.equal(committed.abi);
    // Whole-bytecode equality includes the metadata hash, so even a comment
    // change in the source (or a different OpenZeppelin release) is caught.
    expect(fresh.bytecode === committed.bytecode, 'bytecode differs from DevUSDC.json').to.equal(true);
  });
});
