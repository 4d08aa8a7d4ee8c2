// The release command: berth runs it once per release, before the release's instances start.
// The first release has no database yet (berth addons:create attaches one in a new release).
const { Client } = require('pg');

async function main() {
  if (!process.env.DATABASE_URL) {
    console.log('no DATABASE_URL yet: nothing to migrate (berth addons:create notes postgres)');
    return;
  }
  const client = new Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    await client.query('CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, text text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())');
    console.log('migrated: table notes is there');
  } finally {
    await client.end();
  }
}

main().catch((err) => {
  console.error(`migration failed: ${err.message}`);
  process.exit(1);
});
