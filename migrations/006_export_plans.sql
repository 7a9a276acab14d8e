-- Exports that span many locations and days (the planner, ingest/planner.py).
--
-- A job stays one (scope, day); the claim packs pending jobs of one group into a block of
-- scopes x consecutive days. When the vendor fails such an export, its jobs are cut in two
-- halves, each named by an export plan: a half goes out as one export of its own, and is cut
-- again if it fails, down to a single scope-day.
ALTER TABLE ingest.jobs ADD COLUMN export_plan text;

COMMENT ON COLUMN ingest.jobs.export_plan IS
    'Set when a failed export was cut in two: the jobs of one half share it and go out together.';

-- the planner's scans: the group's claimable jobs of a day, and the jobs of a plan
CREATE INDEX jobs_pack ON ingest.jobs (vendor, data_type, time_resolution, day)
    WHERE status IN ('pending', 'running');
CREATE INDEX jobs_plans ON ingest.jobs (export_plan) WHERE export_plan IS NOT NULL;
