/**
 * The JSON text of objects that were serialised once already, so that sending the same object as an answer does
 * not serialise it again: a created payment is written as its `payment.created` event's data and is also the
 * API's answer (one JSON.stringify of a payment is ≈ 2–3 µs on the hottest write). Only for objects that are not
 * changed after they are remembered; anything not remembered is serialised as usual.
 */
const serialized = new WeakMap<object, string>();

/** Serialises `value` and remembers the text for `jsonOf`. */
export function serializeOnce(value: object): string {
  const json = JSON.stringify(value);
  serialized.set(value, json);
  return json;
}

/** JSON text of `value`: the remembered text when there is one. */
export const jsonOf = (value: object): string => serialized.get(value) ?? JSON.stringify(value);
