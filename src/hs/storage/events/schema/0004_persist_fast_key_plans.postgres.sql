-- Every statement of hs_persist_events_fast touches a handful of rows by key, whatever
-- the size of the tables. Its generic plans (0003) are costed for arrays of ten elements
-- against the table sizes the planner knew when a connection first ran them, and for
-- tables of up to some thousands of rows that costing prefers hashing a whole-table scan
-- over index probes: measured at 0.1-0.2 ms per statement and growing with the table until
-- the next ANALYZE changes the plan (the state group lookup alone was a fifth of the
-- function's time on a young server). Index probes are right at every size here.
ALTER FUNCTION hs_persist_events_fast SET enable_seqscan = off SET enable_hashjoin = off;
