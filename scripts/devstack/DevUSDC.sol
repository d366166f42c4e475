// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice USDC look-alike for local chains and tests only: 6 decimals like the
/// real token, so amount handling is exercised with the same scale.
/// The compiled artifact is DevUSDC.json (regenerate: npx tsx scripts/devstack/compile-token.ts).
contract DevUSDC is ERC20 {
    uint256 public constant INITIAL_BALANCE = 1_000_000 * 10 ** 6;

    constructor(address[] memory holders) ERC20("USD Coin (dev)", "USDC") {
        for (uint256 i = 0; i < holders.length; i++) {
            _mint(holders[i], INITIAL_BALANCE);
        }
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }
}
