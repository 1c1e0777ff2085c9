-- Stream position allocation and the cross-process "current" position (hs.storage.streams).
-- Allocation takes a shared per-stream advisory lock while it draws from the sequence and
-- records the position as in flight; reading "current" takes the exclusive lock, so it waits
-- until every allocation that already drew a number has made its in-flight row visible.
-- Each statement of a VOLATILE plpgsql function sees a fresh snapshot under READ COMMITTED,
-- so the reads after the lock see everything committed before it was granted.
-- Completing positions sends NOTIFY hs_streams '<stream>' so other processes can refresh.

CREATE FUNCTION hs_stream_allocate(p_stream TEXT, p_instance TEXT, p_count INTEGER)
RETURNS SETOF BIGINT LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('hs_stream:' || p_stream, 0));
    RETURN QUERY
        INSERT INTO stream_inflight (stream_name, position, instance_name)
        SELECT p_stream, nextval(('hs_stream_' || p_stream)::regclass), p_instance
        FROM generate_series(1, p_count)
        RETURNING stream_inflight.position;
END
$$;

CREATE FUNCTION hs_stream_current(p_stream TEXT)
RETURNS BIGINT LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    done BIGINT;
    pending BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('hs_stream:' || p_stream, 0));
    SELECT sp.position INTO done FROM stream_positions sp WHERE sp.stream_name = p_stream;
    SELECT min(si.position) INTO pending FROM stream_inflight si
        WHERE si.stream_name = p_stream;
    IF pending IS NULL THEN
        RETURN done;
    END IF;
    RETURN LEAST(done, pending - 1);
END
$$;

-- Complete (commit or abandon) in-flight positions chosen by number or by instance name;
-- returns the new hs_stream_current(), saving the caller a round trip.
CREATE FUNCTION hs_stream_complete(p_stream TEXT, p_positions BIGINT[], p_instance TEXT)
RETURNS BIGINT LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    top BIGINT;
BEGIN
    WITH done AS (
        DELETE FROM stream_inflight si
        WHERE si.stream_name = p_stream
          AND (si.position = ANY(p_positions) OR si.instance_name = p_instance)
        RETURNING si.position
    )
    SELECT max(done.position) INTO top FROM done;
    IF top IS NOT NULL THEN
        UPDATE stream_positions SET position = GREATEST(position, top)
            WHERE stream_name = p_stream;
    END IF;
    PERFORM pg_notify('hs_streams', p_stream);
    RETURN hs_stream_current(p_stream);
END
$$;
