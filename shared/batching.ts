/**
 * Coalesces concurrent calls of one kind into batches, so that N requests arriving together cost one database
 * round trip instead of N. On this kind of machine the round trip is the cost: each statement is a socket write,
 * a Postgres wake-up and a reply to parse, and the bench found the API and Postgres spending most of their CPU on
 * exactly that (README "Performance"). Batching is by arrival, with no timer: a call made while fewer than
 * `maxInFlight` batches run goes out with whatever else arrived in the same turn of the event loop (so a lone
 * request waits for nothing); calls made while `maxInFlight` batches run wait for one of them to finish, and then
 * all go out together.
 *
 * `run` gets the inputs of one batch and returns one result per input, in the same order. If it throws for a batch
 * of several, each input is run again alone, so one bad input fails only its own call.
 */
export interface BatchOptions {
  /** Batches running at once (each holds a database connection while it runs). */
  maxInFlight: number;
  /** Largest batch; more waiting calls make several batches. */
  maxBatch: number;
}

export function createBatcher<I, O>(run: (inputs: I[]) => Promise<O[]>, { maxInFlight, maxBatch }: BatchOptions): (input: I) => Promise<O> {
  interface Waiting {
    input: I;
    resolve(value: O): void;
    reject(err: unknown): void;
  }
  let waiting: Waiting[] = [];
  let inFlight = 0;
  let scheduled = false;

  const settle = async (batch: Waiting[]) => {
    try {
      const results = await run(batch.map((w) => w.input));
      batch.forEach((w, i) => w.resolve(results[i]));
    } catch (err) {
      if (batch.length === 1) batch[0].reject(err);
      else await Promise.all(batch.map((w) => run([w.input]).then(([result]) => w.resolve(result), w.reject)));
    }
  };

  const flush = () => {
    scheduled = false;
    while (waiting.length > 0 && inFlight < maxInFlight) {
      const batch = waiting.length <= maxBatch ? waiting : waiting.slice(0, maxBatch);
      waiting = batch === waiting ? [] : waiting.slice(maxBatch);
      inFlight++;
      void settle(batch).finally(() => {
        inFlight--;
        flush();
      });
    }
  };

  return (input) =>
    new Promise<O>((resolve, reject) => {
      waiting.push({ input, resolve, reject });
      // setImmediate runs after this turn's I/O callbacks: requests read from other sockets in the same turn join.
      if (!scheduled && inFlight < maxInFlight) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}

/**
 * For GET /payments/:id and payment creation alike: while one statement runs, the next batch gathers behind the
 * other slot; 64 bounds a statement's size. The bench figures in the README were measured with these values.
 */
export const BATCHING: BatchOptions = { maxInFlight: 2, maxBatch: 64 };
