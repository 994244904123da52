"""Counter stores (memory, Redis/Valkey), usage stores (SQLite, PostgreSQL) and the credentials client."""
