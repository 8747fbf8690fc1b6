-- On the database host (docs/deploy.md), as the postgres user: psql -f postgresql.sql
-- docbot creates its own tables at start; it needs a database it owns.
CREATE ROLE docbot LOGIN PASSWORD 'change-me-db-password';
CREATE DATABASE docbot OWNER docbot;
