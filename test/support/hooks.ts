/**
 * Mocha root hooks (loaded through `.mocharc.json` "require"). Deliberately
 * imports nothing heavy: unit-only runs load this file too and must not pay
 * for (or start) the integration stack.
 */

/** Where test/support/stack.ts keeps its per-process singleton. */
export const TEST_STACK_KEY = Symbol.for('payflow.testStack');

export interface TestStackSlot {
  stop(): Promise<void>;
}

type GlobalWithStack = typeof globalThis & { [TEST_STACK_KEY]?: TestStackSlot };

export const mochaHooks = {
  async afterAll(this: Mocha.Context): Promise<void> {
    const slot = (globalThis as GlobalWithStack)[TEST_STACK_KEY];
    if (!slot) return;
    this.timeout(60_000);
    await slot.stop();
  },
};
