-- NOTIFY hs_streams carries the stream's new current position ('<stream> <position>'), so
-- a listener learns it without a round trip, and the process that did the write (which
-- already knows) does nothing. Before, every completion (every message sent) made each
-- listening process read hs_stream_current() back, taking the stream's exclusive lock,
-- at the moment its long-polls were being woken by that same write.
--
-- The value is hs_stream_current() inside the completing transaction, which holds the
-- stream's exclusive lock from then until it commits, and a notification is delivered
-- only once its transaction has committed: every position up to the value is complete
-- and visible by the time a listener reads it.
CREATE OR REPLACE FUNCTION hs_stream_complete(p_stream TEXT, p_positions BIGINT[],
                                              p_instance TEXT)
RETURNS BIGINT LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    top BIGINT;
    now_current BIGINT;
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
    now_current := hs_stream_current(p_stream);
    PERFORM pg_notify('hs_streams', p_stream || ' ' || coalesce(now_current::TEXT, ''));
    RETURN now_current;
END
$$;
