-- The event persister's fast path on PostgreSQL (hs.storage.events.persist): a batch of
-- new, accepted, non-state DAG events whose state before is the state after an event
-- stored earlier (or an earlier event of the batch), written by ONE statement. Called
-- outside an explicit transaction, the call is its own transaction: one round trip instead
-- of BEGIN, about fifteen statements and COMMIT.
--
-- The function does what the general path does for such a batch, in the same order: take
-- the room locks (rooms sorted by the caller), check the expected forward extremities,
-- check that no event and no transaction ID of the batch is stored yet, look up the state
-- groups, then write event_to_state_group, events, edges, auth edges, extremities,
-- relations, redactions, the redaction marks and the transaction IDs. Whenever the batch
-- is not that simple after all (stale extremities, an event or transaction ID already
-- stored, a state group missing), it writes nothing and returns ok = FALSE: the caller
-- then runs the general path, which raises or deduplicates as usual.
--
-- Per-event arrays are aligned (p_event_id[i] is event i); p_group_ix[i] is the index in
-- p_refs of the event whose state-after group is event i's group (before and after).
-- Returned: the groups of p_refs, in order, and the (event, redacted_by) marks.

CREATE FUNCTION hs_persist_events_fast(
    p_rooms TEXT[],
    p_check_rooms TEXT[], p_expected_room TEXT[], p_expected_id TEXT[],
    p_stream BIGINT[], p_event_id TEXT[], p_room_id TEXT[], p_type TEXT[], p_sender TEXT[],
    p_depth BIGINT[], p_origin_ts BIGINT[], p_received_ts BIGINT[], p_room_version TEXT[],
    p_json TEXT[],
    p_refs TEXT[], p_group_ix INTEGER[],
    p_edge_event TEXT[], p_edge_prev TEXT[],
    p_auth_event TEXT[], p_auth_id TEXT[],
    p_retire_room TEXT[], p_retire_id TEXT[],
    p_cand_room TEXT[], p_cand_id TEXT[],
    p_rel_event TEXT[], p_rel_target TEXT[], p_rel_type TEXT[], p_rel_key TEXT[],
    p_rel_room TEXT[], p_rel_event_type TEXT[], p_rel_sender TEXT[], p_rel_stream BIGINT[],
    p_redaction_event TEXT[], p_redaction_target TEXT[],
    p_txn_user TEXT[], p_txn_device TEXT[], p_txn_room TEXT[], p_txn_id TEXT[],
    p_txn_event TEXT[],
    p_now BIGINT,
    OUT ok BOOLEAN, OUT groups BIGINT[], OUT marked_ids TEXT[], OUT marked_by TEXT[]
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r TEXT;
BEGIN
    ok := FALSE;
    FOREACH r IN ARRAY p_rooms LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('hs_room:' || r, 0));
    END LOOP;
    -- Read first (under the room locks): anything unusual leaves the batch to the caller.
    IF cardinality(p_check_rooms) > 0 AND EXISTS (
        SELECT 1
        FROM (SELECT x.room_id, x.event_id FROM event_forward_extremities x
              WHERE x.room_id = ANY(p_check_rooms)) cur
        FULL JOIN unnest(p_expected_room, p_expected_id) AS want(room_id, event_id)
            ON want.room_id = cur.room_id AND want.event_id = cur.event_id
        WHERE cur.event_id IS NULL OR want.event_id IS NULL
    ) THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM events e WHERE e.event_id = ANY(p_event_id)) THEN
        RETURN;
    END IF;
    IF cardinality(p_txn_id) > 0 AND EXISTS (
        SELECT 1
        FROM unnest(p_txn_user, p_txn_device, p_txn_room, p_txn_id) AS k(u, d, rm, t)
        JOIN event_txn_ids t ON t.user_id = k.u AND t.device_id = k.d AND t.room_id = k.rm
            AND t.txn_id = k.t
        JOIN events e ON e.event_id = t.event_id
    ) THEN
        RETURN;
    END IF;
    SELECT array_agg(g.state_group ORDER BY ref.n) INTO groups
    FROM unnest(p_refs) WITH ORDINALITY AS ref(event_id, n)
    JOIN event_to_state_group g ON g.event_id = ref.event_id;
    IF coalesce(cardinality(groups), 0) <> cardinality(p_refs) THEN
        groups := NULL;
        RETURN;
    END IF;

    INSERT INTO event_to_state_group (event_id, state_group, state_group_before)
    SELECT u.event_id, groups[u.ix], groups[u.ix]
    FROM unnest(p_event_id, p_group_ix) AS u(event_id, ix);

    INSERT INTO events (stream_ordering, event_id, room_id, type, state_key, sender, depth,
                        origin_server_ts, received_ts, outlier, soft_failed, rejected_reason,
                        in_timeline, room_version, json)
    SELECT u.so, u.eid, u.rid, u.typ, NULL, u.snd, u.dep, u.ots, u.rts, FALSE, FALSE, NULL,
           TRUE, u.rv, u.js
    FROM unnest(p_stream, p_event_id, p_room_id, p_type, p_sender, p_depth, p_origin_ts,
                p_received_ts, p_room_version, p_json)
        AS u(so, eid, rid, typ, snd, dep, ots, rts, rv, js);

    INSERT INTO event_edges (event_id, prev_event_id, is_excluded)
    SELECT u.e, u.p, FALSE FROM unnest(p_edge_event, p_edge_prev) AS u(e, p)
    ON CONFLICT (event_id, prev_event_id) DO UPDATE SET is_excluded = EXCLUDED.is_excluded;

    INSERT INTO event_auth (event_id, auth_id)
    SELECT u.e, u.a FROM unnest(p_auth_event, p_auth_id) AS u(e, a)
    ON CONFLICT (event_id, auth_id) DO NOTHING;

    -- The batch's prev events stop being extremities; its events no other event (of the
    -- batch: left out by the caller; stored: checked here) points at become ones.
    DELETE FROM event_forward_extremities x
    USING unnest(p_retire_room, p_retire_id) AS u(rm, e)
    WHERE x.room_id = u.rm AND x.event_id = u.e;
    INSERT INTO event_forward_extremities (room_id, event_id)
    SELECT u.rm, u.e FROM unnest(p_cand_room, p_cand_id) AS u(rm, e)
    WHERE NOT EXISTS (SELECT 1 FROM event_edges ee
                      WHERE ee.prev_event_id = u.e AND NOT ee.is_excluded)
    ON CONFLICT (room_id, event_id) DO NOTHING;

    INSERT INTO event_relations (event_id, relates_to, rel_type, aggregation_key, room_id,
                                 event_type, sender, stream_ordering)
    SELECT * FROM unnest(p_rel_event, p_rel_target, p_rel_type, p_rel_key, p_rel_room,
                         p_rel_event_type, p_rel_sender, p_rel_stream)
    ON CONFLICT (event_id) DO NOTHING;
    INSERT INTO redactions (event_id, redacts, received_ts)
    SELECT u.e, u.t, p_now FROM unnest(p_redaction_event, p_redaction_target) AS u(e, t)
    ON CONFLICT (event_id) DO NOTHING;
    -- Targets redacted by this batch, and events of this batch redacted earlier; only a
    -- redaction from the target's own room counts.
    WITH marked AS (
        UPDATE events SET redacted = TRUE, redacted_by = (
            SELECT min(rd.event_id) FROM redactions rd JOIN events re ON re.event_id = rd.event_id
            WHERE rd.redacts = events.event_id AND re.room_id = events.room_id)
        WHERE events.event_id = ANY(p_event_id || p_redaction_target)
          AND events.redacted_by IS NULL
          AND EXISTS (
            SELECT 1 FROM redactions rd JOIN events re ON re.event_id = rd.event_id
            WHERE rd.redacts = events.event_id AND re.room_id = events.room_id)
        RETURNING events.event_id, events.redacted_by
    )
    SELECT array_agg(m.event_id), array_agg(m.redacted_by) INTO marked_ids, marked_by
    FROM marked m;
    IF marked_ids IS NOT NULL THEN
        DELETE FROM event_relations er WHERE er.event_id = ANY(marked_ids);
    END IF;

    INSERT INTO event_txn_ids (user_id, device_id, room_id, txn_id, event_id, inserted_ts)
    SELECT u.u, u.d, u.rm, u.t, u.e, p_now
    FROM unnest(p_txn_user, p_txn_device, p_txn_room, p_txn_id, p_txn_event)
        AS u(u, d, rm, t, e);
    ok := TRUE;
END
$$;
