/**
 * Typed errors. Every error that reaches an HTTP client is an ApiError (or mapped to one by api/errors.ts);
 * anything else is a bug and answers 500 without details.
 */
export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'conflict_error'
  | 'rate_limit_error'
  | 'service_unavailable_error'
  | 'api_error';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly type: ApiErrorType,
    readonly code: string,
    message: string,
    readonly param?: string,
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export const invalidRequest = (code: string, message: string, param?: string) =>
  new ApiError(400, 'invalid_request_error', code, message, param);
export const notFound = (what: string) => new ApiError(404, 'not_found_error', 'resource_missing', `No such ${what}`);
export const unauthorized = (message = 'Missing or invalid credentials') =>
  new ApiError(401, 'authentication_error', 'unauthorized', message);

/** Raised when configuration is missing or invalid; the process prints the one-line message and exits. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
  }
}

/** Raised when an amount string cannot be turned into exact base units. */
export class AmountError extends Error {
  override name = 'AmountError';
  constructor(readonly code: 'amount_invalid' | 'amount_too_precise' | 'amount_not_positive' | 'amount_too_large', message: string) {
    super(message);
  }
}

/** A chain answered something we cannot trust yet (reorg mid-scan, malformed data); the job retries. */
export class ChainDataError extends Error {
  override name = 'ChainDataError';
}
