-- The tables of the PostgreSQL backend, made on first open (under an
-- advisory lock, so two processes opening at once do not race), and the
-- commit function every commit calls in one statement.
--
--   persisted_state  one row per store: its version (the number of
--                    commits), the plain fields as one JSON object (fields
--                    the struct does not know are kept), and which fields
--                    are native collections (`kinds`: field -> list|hash).
--   persisted_item   the elements of list (and set) fields, in `pos` order.
--   persisted_entry  the entries of map fields, by key text.
--   persisted_log    every commit: its version (`seq`), commit id, time and
--                    record (a JSON object like a journal record's). The
--                    history; trimmed by the store's `keep_history`.
SELECT pg_advisory_xact_lock(7046520175467390001);

CREATE TABLE IF NOT EXISTS persisted_state (
    key text PRIMARY KEY,
    version bigint NOT NULL DEFAULT 0,
    layout int NOT NULL DEFAULT 1,
    state jsonb NOT NULL DEFAULT '{}',
    kinds jsonb NOT NULL DEFAULT '{}'
);

-- An encrypted store's envelope (base64): its data key, wrapped by the
-- caller's key. The values of its fields are then sealed strings.
ALTER TABLE persisted_state ADD COLUMN IF NOT EXISTS envelope text;

CREATE TABLE IF NOT EXISTS persisted_item (
    key text NOT NULL,
    field text NOT NULL,
    pos bigint NOT NULL,
    value jsonb NOT NULL,
    PRIMARY KEY (key, field, pos)
);

-- Set elements are found by value through a digest of it: a B-tree entry
-- holds at most ~8 KB, and an element may be larger. (The first layout
-- indexed the value itself, which refused larger elements; dropped.)
DROP INDEX IF EXISTS persisted_item_value;
CREATE INDEX IF NOT EXISTS persisted_item_digest
    ON persisted_item (key, field, md5(value::text));

CREATE TABLE IF NOT EXISTS persisted_entry (
    key text NOT NULL,
    field text NOT NULL,
    k text NOT NULL,
    value jsonb NOT NULL,
    PRIMARY KEY (key, field, k)
);

CREATE TABLE IF NOT EXISTS persisted_log (
    key text NOT NULL,
    seq bigint NOT NULL,
    cid text NOT NULL,
    time_ms bigint NOT NULL,
    record text NOT NULL,
    PRIMARY KEY (key, seq)
);

CREATE UNIQUE INDEX IF NOT EXISTS persisted_log_cid ON persisted_log (key, cid);

-- Trims the log of store `p_key` at version `v` to its last `p_keep`
-- entries (0: no count limit) and to those made at or after `p_keep_after`
-- (ms since the epoch; 0: no age limit); the newest entry always stays.
-- A commit trims only the entries that fall out with it (a bounded range
-- of `seq`): a scan from the log's start would walk every index entry that
-- earlier trims deleted and vacuum has not yet removed, a cost that grows
-- with every commit until the next vacuum. The whole log (a keep that
-- shrank, the age limit) is trimmed when `p_full`: at open, and every
-- 1024th commit (the age limit every 64th). `persisted_commit` inlines the
-- bounded trim of the other commits.
CREATE OR REPLACE FUNCTION persisted_trim(
    p_key text, v bigint, p_keep bigint, p_keep_after bigint, p_full boolean
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_keep > 0 AND p_full THEN
        DELETE FROM persisted_log WHERE key = p_key AND seq <= v - p_keep;
    ELSIF p_keep > 0 THEN
        DELETE FROM persisted_log
            WHERE key = p_key AND seq > v - p_keep - 64 AND seq <= v - p_keep;
    END IF;
    IF p_keep_after > 0 AND (p_full OR v % 64 = 0) THEN
        DELETE FROM persisted_log WHERE key = p_key AND seq < v AND time_ms < p_keep_after;
    END IF;
END
$$;

-- One commit: the version check, every change, the version bump and the
-- log entry, all or nothing. Returns the new version, or -1 when another
-- commit came first (nothing applied). `p_set` holds the plain fields the
-- commit sets (one JSON object, merged in with the version bump: one row
-- update); `p_unkind` those of them that were collections until now;
-- `p_ops` the rest, in order: a JSON array of {"op": code, "f": field,
-- "a": [argument texts]}, the operations the Redis backend's commit script
-- runs, on the tables above.
CREATE OR REPLACE FUNCTION persisted_commit(
    p_key text, p_expected bigint, p_cid text, p_time bigint, p_record text, p_set jsonb,
    p_unkind text[], p_ops jsonb, p_keep bigint, p_keep_after bigint
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
    op jsonb;
    f text;
    a jsonb;
    n bigint;
BEGIN
    UPDATE persisted_state
        SET version = version + 1, state = state || p_set, kinds = kinds - p_unkind
        WHERE key = p_key AND version = p_expected
        RETURNING version INTO v;
    IF v IS NULL THEN
        RETURN -1;
    END IF;
    IF cardinality(p_unkind) > 0 THEN
        DELETE FROM persisted_item WHERE key = p_key AND field = ANY(p_unkind);
        DELETE FROM persisted_entry WHERE key = p_key AND field = ANY(p_unkind);
    END IF;
    FOR op IN SELECT value FROM jsonb_array_elements(p_ops) LOOP
        f := op->>'f';
        a := op->'a';
        CASE op->>'op'
        WHEN 'J', 'JN' THEN
            DELETE FROM persisted_item WHERE key = p_key AND field = f;
            DELETE FROM persisted_entry WHERE key = p_key AND field = f;
            UPDATE persisted_state
                SET state = jsonb_set(state, ARRAY[f], (a->>0)::jsonb), kinds = kinds - f
                WHERE key = p_key;
        WHEN 'L' THEN
            DELETE FROM persisted_item WHERE key = p_key AND field = f;
            DELETE FROM persisted_entry WHERE key = p_key AND field = f;
            UPDATE persisted_state
                SET state = state - f, kinds = jsonb_set(kinds, ARRAY[f], '"list"')
                WHERE key = p_key;
            INSERT INTO persisted_item (key, field, pos, value)
                SELECT p_key, f, t.ord - 1, t.x::jsonb
                FROM jsonb_array_elements_text(a) WITH ORDINALITY AS t(x, ord);
        WHEN 'H' THEN
            DELETE FROM persisted_item WHERE key = p_key AND field = f;
            DELETE FROM persisted_entry WHERE key = p_key AND field = f;
            UPDATE persisted_state
                SET state = state - f, kinds = jsonb_set(kinds, ARRAY[f], '"hash"')
                WHERE key = p_key;
            INSERT INTO persisted_entry (key, field, k, value)
                SELECT p_key, f, a->>(2 * i), (a->>(2 * i + 1))::jsonb
                FROM generate_series(0, jsonb_array_length(a) / 2 - 1) AS i;
        WHEN 'push' THEN
            SELECT coalesce(max(pos) + 1, 0) INTO n
                FROM persisted_item WHERE key = p_key AND field = f;
            INSERT INTO persisted_item (key, field, pos, value)
                SELECT p_key, f, n + t.ord - 1, t.x::jsonb
                FROM jsonb_array_elements_text(a) WITH ORDINALITY AS t(x, ord);
        WHEN 'push_front' THEN
            SELECT coalesce(min(pos) - 1, 0) INTO n
                FROM persisted_item WHERE key = p_key AND field = f;
            INSERT INTO persisted_item (key, field, pos, value)
                VALUES (p_key, f, n, (a->>0)::jsonb);
        WHEN 'pop' THEN
            DELETE FROM persisted_item WHERE key = p_key AND field = f AND pos =
                (SELECT max(pos) FROM persisted_item WHERE key = p_key AND field = f);
        WHEN 'pop_front' THEN
            DELETE FROM persisted_item WHERE key = p_key AND field = f AND pos =
                (SELECT min(pos) FROM persisted_item WHERE key = p_key AND field = f);
        WHEN 'clear' THEN
            DELETE FROM persisted_item WHERE key = p_key AND field = f;
            DELETE FROM persisted_entry WHERE key = p_key AND field = f;
        WHEN 'minsert' THEN
            INSERT INTO persisted_entry (key, field, k, value)
                VALUES (p_key, f, a->>0, (a->>1)::jsonb)
                ON CONFLICT (key, field, k) DO UPDATE SET value = EXCLUDED.value;
        WHEN 'mremove' THEN
            DELETE FROM persisted_entry WHERE key = p_key AND field = f AND k = a->>0;
        WHEN 'sinsert' THEN
            IF NOT EXISTS (SELECT 1 FROM persisted_item
                    WHERE key = p_key AND field = f
                    AND md5(value::text) = md5((a->>0)::jsonb::text)
                    AND value = (a->>0)::jsonb) THEN
                SELECT coalesce(max(pos) + 1, 0) INTO n
                    FROM persisted_item WHERE key = p_key AND field = f;
                INSERT INTO persisted_item (key, field, pos, value)
                    VALUES (p_key, f, n, (a->>0)::jsonb);
            END IF;
        WHEN 'sremove' THEN
            DELETE FROM persisted_item WHERE key = p_key AND field = f AND pos =
                (SELECT min(pos) FROM persisted_item
                    WHERE key = p_key AND field = f
                    AND md5(value::text) = md5((a->>0)::jsonb::text)
                    AND value = (a->>0)::jsonb);
        END CASE;
    END LOOP;
    INSERT INTO persisted_log (key, seq, cid, time_ms, record)
        VALUES (p_key, v, p_cid, p_time, p_record);
    IF v % 64 = 0 THEN
        PERFORM persisted_trim(p_key, v, p_keep, p_keep_after, v % 1024 = 0);
    ELSIF p_keep > 0 THEN
        DELETE FROM persisted_log
            WHERE key = p_key AND seq > v - p_keep - 64 AND seq <= v - p_keep;
    END IF;
    PERFORM pg_notify('persisted_state', p_key);
    RETURN v;
END
$$;
