/**
 * A tiny HTML template: every interpolated value is escaped unless it is a `TrustedHtml` (another template, or
 * markup we generated ourselves such as the QR code's SVG). Merchant-controlled text (the merchant's name, the
 * redirect URLs) can therefore never become markup.
 */
export class TrustedHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

type Interpolation = string | number | TrustedHtml | null | undefined | false | Interpolation[];

function render(value: Interpolation): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof TrustedHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Interpolation[]): TrustedHtml {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new TrustedHtml(out);
}

/** For markup this process generated itself and that holds no outside input unescaped. */
export const trusted = (markup: string) => new TrustedHtml(markup);
