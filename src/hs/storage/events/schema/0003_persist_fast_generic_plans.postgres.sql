-- hs_persist_events_fast (0002) runs the same statements for every batch, with arrays
-- as parameters whose contents do not change which plan is best (key lookups and
-- inserts). By default PostgreSQL plans each statement afresh on its first five
-- executions on every connection before it settles on a generic plan: ~0.6 ms more per
-- call for the first calls of each pooled connection. Plan once, generically.
ALTER FUNCTION hs_persist_events_fast SET plan_cache_mode = force_generic_plan;
