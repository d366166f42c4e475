// Used by the knex CLI (`npx knex migrate:latest`); the app itself migrates through shared/db.ts.
import { migrationConfig } from './shared/db.js';

export default {
  client: 'pg',
  connection: process.env.DATABASE_URL,
  migrations: migrationConfig,
};
