-- Claims take the earliest due pending job, by run_after then id: an index in that order
-- (across accounts; the account is a filter) finds it without sorting every pending job,
-- which took seconds per claim with a year of a fleet's backfill in the ledger.
DROP INDEX ingest.jobs_due;
CREATE INDEX jobs_due ON ingest.jobs (vendor, run_after, id) WHERE status = 'pending';
