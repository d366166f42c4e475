import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Knex } from 'knex';

interface MigrationFile {
  /** The name knex records in knex_migrations: always `<stem>.ts`. */
  name: string;
  file: string;
}

// From source (tsx) this module is a .ts file next to .ts migrations; from the build (dist/) a .js file next to .js
// migrations.
const OWN_EXTENSION = path.extname(new URL(import.meta.url).pathname);

/**
 * Migrations from MIGRATIONS_DIR, whether they are the TypeScript sources (`npm start`, tests) or their compiled
 * JavaScript in dist/migrations (the Procfile's `release`). knex records a migration by its name and refuses to
 * run when a recorded name is missing from the directory ("migration directory is corrupt"), so both forms go by
 * the same name, the source file's `<stem>.ts`, which is also what every database migrated before the build existed
 * holds. A database migrated from source is current for the build, and the other way round.
 */
export function migrationSource(directory: string): Knex.MigrationSource<MigrationFile> {
  return {
    async getMigrations() {
      const byName = new Map<string, MigrationFile>();
      for (const entry of (await readdir(directory)).sort()) {
        const ext = path.extname(entry);
        if ((ext !== '.ts' && ext !== '.js') || entry.endsWith('.d.ts')) continue;
        const name = `${entry.slice(0, -ext.length)}.ts`;
        if (byName.has(name) && ext !== OWN_EXTENSION) continue;
        byName.set(name, { name, file: path.join(directory, entry) });
      }
      return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
    getMigrationName: (migration) => migration.name,
    getMigration: async (migration) => (await import(pathToFileURL(migration.file).href)) as Knex.Migration,
  };
}
