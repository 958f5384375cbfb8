-- Koito's SQLite schema, as koito-import lays it down in an empty koito.db.
--
-- How this file is read (koito_import/schema/__init__.py):
--   * A line "-- @section NAME" or "-- @migration N" starts a section; everything up
--     to the next such line belongs to it. Other "--" lines are plain comments.
--   * Statements inside a section are split with sqlite3.complete_statement, so a
--     trigger body (BEGIN ... END;) stays one statement.
--
-- Why the statements are byte-for-byte the ones Koito's goose migrations run
-- (db/migrations_sqlite/001, 002 in Koito): SQLite keeps the text of every CREATE
-- statement in sqlite_master, and migration 002 rebuilds three tables through
-- "CREATE TABLE x_new ... ALTER TABLE x_new RENAME TO x", which leaves its own mark
-- in that text (the name becomes "x" in quotes). Replaying the same statements in
-- the same order is the only way to end up with a schema that is identical, not
-- merely equivalent, to one Koito built itself. Edit nothing between the markers
-- unless Koito's migrations change; tests/test_schema.py compares the result with a
-- snapshot taken from Koito's own migration files.

-- @section goose
-- goose v3.24's bookkeeping table, in the exact text goose's sqlite3 dialect uses
-- (the indentation is TABS on purpose: SQLite stores the text verbatim). koito-import
-- then writes version 0 and one row per migration, as goose does.
CREATE TABLE goose_db_version (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		version_id INTEGER NOT NULL,
		is_applied INTEGER NOT NULL,
		tstamp TIMESTAMP DEFAULT (datetime('now'))
	);

-- @migration 1
-- Migration 1: every table, the three *_with_name/_title views, the orphan-album
-- trigger and the indexes. Booleans are INTEGER 0/1, times are INTEGER unix seconds.

CREATE TABLE IF NOT EXISTS artists (
    id             INTEGER PRIMARY KEY,
    musicbrainz_id TEXT UNIQUE,
    image          TEXT,
    image_source   TEXT
);

CREATE TABLE IF NOT EXISTS artist_aliases (
    artist_id  INTEGER NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
    alias      TEXT NOT NULL,
    source     TEXT NOT NULL,
    is_primary INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (artist_id, alias)
);

CREATE TABLE IF NOT EXISTS releases (
    id              INTEGER PRIMARY KEY,
    musicbrainz_id  TEXT UNIQUE,
    image           TEXT,
    image_source    TEXT,
    various_artists INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS artist_releases (
    artist_id  INTEGER NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
    release_id INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    is_primary INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (artist_id, release_id)
);

CREATE TABLE IF NOT EXISTS release_aliases (
    release_id INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    alias      TEXT NOT NULL,
    source     TEXT NOT NULL,
    is_primary INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (release_id, alias)
);

CREATE TABLE IF NOT EXISTS tracks (
    id             INTEGER PRIMARY KEY,
    musicbrainz_id TEXT UNIQUE,
    release_id     INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    duration       INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS artist_tracks (
    artist_id  INTEGER NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
    track_id   INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    is_primary INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (artist_id, track_id)
);

CREATE TABLE IF NOT EXISTS track_aliases (
    track_id   INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    alias      TEXT NOT NULL,
    source     TEXT NOT NULL,
    is_primary INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (track_id, alias)
);

-- users.password holds the bcrypt hash as a BLOB; role is checked text.
CREATE TABLE IF NOT EXISTS users (
    id       INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    role     TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    password BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS api_keys (
    id         INTEGER PRIMARY KEY,
    key        TEXT NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    label      TEXT NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS sessions (
    id         TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    persistent INTEGER NOT NULL DEFAULT 0
);

-- A listen is identified by (track, second): the same track twice in one second
-- is one listen.
CREATE TABLE IF NOT EXISTS listens (
    track_id    INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    listened_at INTEGER NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (track_id, listened_at)
);

-- An entity's name/title is its primary alias; Koito reads entities through these.
CREATE VIEW IF NOT EXISTS artists_with_name AS
SELECT a.*, aa.alias AS name
FROM artists a
JOIN artist_aliases aa ON a.id = aa.artist_id
WHERE aa.is_primary = 1;

CREATE VIEW IF NOT EXISTS releases_with_title AS
SELECT r.*, ra.alias AS title
FROM releases r
JOIN release_aliases ra ON r.id = ra.release_id
WHERE ra.is_primary = 1;

CREATE VIEW IF NOT EXISTS tracks_with_title AS
SELECT t.*, ta.alias AS title
FROM tracks t
JOIN track_aliases ta ON t.id = ta.track_id
WHERE ta.is_primary = 1;

CREATE TRIGGER IF NOT EXISTS trg_delete_orphan_releases
AFTER DELETE ON artist_releases
BEGIN
    DELETE FROM releases
    WHERE id = OLD.release_id
      AND NOT EXISTS (
          SELECT 1 FROM artist_releases WHERE release_id = OLD.release_id
      );
END;

CREATE INDEX IF NOT EXISTS idx_listens_listened_at       ON listens(listened_at);

CREATE INDEX IF NOT EXISTS idx_listens_track_id          ON listens(track_id);

CREATE INDEX IF NOT EXISTS idx_listens_track_id_listened_at ON listens(track_id, listened_at);

CREATE INDEX IF NOT EXISTS idx_listens_user_id           ON listens(user_id);

CREATE INDEX IF NOT EXISTS idx_artist_tracks_track_id    ON artist_tracks(track_id);

CREATE INDEX IF NOT EXISTS idx_artist_tracks_artist_id   ON artist_tracks(artist_id);

CREATE INDEX IF NOT EXISTS idx_artist_releases_release_id ON artist_releases(release_id);

CREATE INDEX IF NOT EXISTS idx_tracks_release_id         ON tracks(release_id);

CREATE INDEX IF NOT EXISTS idx_artist_aliases_artist_id  ON artist_aliases(artist_id);

CREATE INDEX IF NOT EXISTS idx_artist_aliases_alias      ON artist_aliases(alias);

CREATE INDEX IF NOT EXISTS idx_release_aliases_alias     ON release_aliases(alias);

CREATE INDEX IF NOT EXISTS idx_track_aliases_alias       ON track_aliases(alias);

CREATE INDEX IF NOT EXISTS idx_sessions_expires_at       ON sessions(expires_at);

-- @migration 2
-- Migration 2: rebuild tracks, releases and artists so that musicbrainz_id is
-- UNIQUE. The PRAGMAs run inside goose's transaction, where SQLite ignores them;
-- they are kept so that the statement sequence stays Koito's.

PRAGMA foreign_keys = OFF;

DROP TRIGGER IF EXISTS trg_delete_orphan_releases;

DROP VIEW IF EXISTS tracks_with_title;

CREATE TABLE tracks_new (
    id             INTEGER PRIMARY KEY,
    musicbrainz_id TEXT UNIQUE,
    release_id     INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    duration       INTEGER NOT NULL DEFAULT 0
);

INSERT INTO tracks_new SELECT * FROM tracks;

DROP TABLE tracks;

ALTER TABLE tracks_new RENAME TO tracks;

CREATE INDEX IF NOT EXISTS idx_tracks_release_id ON tracks(release_id);

CREATE VIEW tracks_with_title AS
SELECT t.*, ta.alias AS title
FROM tracks t
JOIN track_aliases ta ON t.id = ta.track_id
WHERE ta.is_primary = 1;

DROP VIEW IF EXISTS releases_with_title;

CREATE TABLE releases_new (
    id              INTEGER PRIMARY KEY,
    musicbrainz_id  TEXT UNIQUE,
    image           TEXT,
    image_source    TEXT,
    various_artists INTEGER NOT NULL DEFAULT 0
);

INSERT INTO releases_new SELECT * FROM releases;

DROP TABLE releases;

ALTER TABLE releases_new RENAME TO releases;

CREATE VIEW releases_with_title AS
SELECT r.*, ra.alias AS title
FROM releases r
JOIN release_aliases ra ON r.id = ra.release_id
WHERE ra.is_primary = 1;

DROP VIEW IF EXISTS artists_with_name;

CREATE TABLE artists_new (
    id             INTEGER PRIMARY KEY,
    musicbrainz_id TEXT UNIQUE,
    image          TEXT,
    image_source   TEXT
);

INSERT INTO artists_new SELECT * FROM artists;

DROP TABLE artists;

ALTER TABLE artists_new RENAME TO artists;

CREATE VIEW artists_with_name AS
SELECT a.*, aa.alias AS name
FROM artists a
JOIN artist_aliases aa ON a.id = aa.artist_id
WHERE aa.is_primary = 1;

CREATE TRIGGER IF NOT EXISTS trg_delete_orphan_releases
AFTER DELETE ON artist_releases
BEGIN
    DELETE FROM releases
    WHERE id = OLD.release_id
      AND NOT EXISTS (
          SELECT 1 FROM artist_releases WHERE release_id = OLD.release_id
      );
END;

PRAGMA foreign_keys = ON;

-- @section legacy
-- Not Koito's: koito-import 0.1 kept a lookup cache in a table named track_lookup. It is
-- gone (a cache that Koito's own writes never update could serve stale answers), and the
-- name is one Koito may want for itself; a Koito database at a version this tool knows
-- that has the table got it from us, so it is dropped (its indexes go with it).
DROP TABLE IF EXISTS track_lookup;
