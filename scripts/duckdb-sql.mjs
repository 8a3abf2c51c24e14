// Runs the SQL statements read from standard input in an in-memory DuckDB and prints
// the last statement's rows, comma-separated, one per line (NULL as empty). Used by
// scripts/bench-sql.sh (verdict bench --only sql --duckdb ...). DuckDB comes from the
// npm package @duckdb/node-api, installed by bench-sql.sh into DUCKDB_NODE_DIR.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const dir = process.env.DUCKDB_NODE_DIR;
if (!dir) {
  console.error('duckdb-sql: set DUCKDB_NODE_DIR to the folder where @duckdb/node-api is installed');
  process.exit(2);
}
const { DuckDBInstance } = createRequire(dir + '/')('@duckdb/node-api');
const sql = readFileSync(0, 'utf8');
const db = await DuckDBInstance.create(':memory:');
const conn = await db.connect();
const statements = await conn.extractStatements(sql);
let reader;
for (let i = 0; i < statements.count; i++) {
  const prepared = await statements.prepare(i);
  reader = await prepared.runAndReadAll();
}
if (reader) {
  for (const row of reader.getRows()) {
    console.log(row.map((v) => (v === null ? '' : String(v))).join(','));
  }
}
