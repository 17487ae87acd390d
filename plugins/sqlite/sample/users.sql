-- users.sql - the sample database of pipelines/users.json, the analogue of
-- the DynamoDB "UsersTable" of the Lambda examples. sqlite.query runs this
-- once, on a new file, when var/users.db does not exist (config.create_from).
-- By hand: sqlite3 var/users.db < plugins/sqlite/sample/users.sql
CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    email      TEXT NOT NULL UNIQUE,
    team       TEXT NOT NULL,
    created_at TEXT NOT NULL            -- ISO-8601 UTC
);
CREATE INDEX users_team ON users (team);

INSERT INTO users (id, name, email, team, created_at) VALUES
    (1, 'Ada Lovelace',     'ada@example.com',     'engines',   '2024-01-15T09:30:00Z'),
    (2, 'Grace Hopper',     'grace@example.com',   'compilers', '2024-02-01T14:05:00Z'),
    (3, 'Edsger Dijkstra',  'edsger@example.com',  'compilers', '2024-02-20T08:00:00Z'),
    (4, 'Barbara Liskov',   'barbara@example.com', 'types',     '2024-03-03T11:45:00Z'),
    (5, 'Ken Thompson',     'ken@example.com',     'systems',   '2024-03-28T16:20:00Z');
