import { pino, type Logger } from 'pino';

/**
 * Paths that may hold secrets anywhere they are logged. pino replaces them with "[redacted]", so a careless
 * `log.info({ headers })` cannot leak an API key, JWT, webhook secret or seed.
 */
export const REDACT_PATHS = [
  'authorization', '*.authorization', '*.headers.authorization', 'req.headers.authorization', 'req.headers.cookie',
  'api_key', '*.api_key', 'secret', '*.secret', 'token', '*.token', 'adminToken', '*.adminToken',
  'jwtSecret', '*.jwtSecret', 'webhookSecretsKeys', '*.webhookSecretsKeys', 'hdMnemonic', '*.hdMnemonic', 'mnemonic', '*.mnemonic', 'privateKey', '*.privateKey', 'gasTankPrivateKey', '*.gasTankPrivateKey',
  'password', '*.password', 'databaseUrl', '*.databaseUrl', 'redisUrl', '*.redisUrl',
  'headers.authorization', 'headers.cookie', 'metricsToken', '*.metricsToken', 'bullBoardPassword', '*.bullBoardPassword',
  // RPC URLs often carry a provider key in their path or query
  'rpcUrl', '*.rpcUrl', 'config.chains[*].rpcUrl',
];

export function createLogger(opts: { level: string; pretty: boolean; name: string }): Logger {
  return pino({
    name: opts.name,
    level: opts.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { process: opts.name, pid: process.pid },
    transport: opts.pretty ? { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname' } } : undefined,
  });
}

export type { Logger };
