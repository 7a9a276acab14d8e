-- Accounts and completeness.
--
-- Every job, and every VidiCenter row, names the account it belongs to: a VidiCenter
-- account's `host/user` (location ids are per account), or for Angus the stream. Jobs and
-- rows that were there before have no account yet ('' here): the Angus jobs take their
-- stream below; the VidiCenter ones take the configured account when `ingest migrate`
-- (or `ingest run`, `ingest backfill`) next runs with exactly one VidiCenter account
-- configured, since SQL alone cannot know it.
--
-- A done job is `complete` once its day was final when it was fetched (every location
-- had uploaded past the day's end plus the settle margin; Angus: the day had ended plus
-- the margin). `ingest run` refreshes the done jobs that are not complete.

-- --- the ledger ---------------------------------------------------------------------

ALTER TABLE ingest.jobs ADD COLUMN account text NOT NULL DEFAULT '';
ALTER TABLE ingest.jobs ADD COLUMN complete boolean NOT NULL DEFAULT false;

UPDATE ingest.jobs SET account = substr(scope, length('stream:') + 1)
WHERE vendor = 'angus' AND scope LIKE 'stream:%';

-- Jobs done before completeness was recorded: those fetched a day or more after their
-- day had ended are taken as final; the others are refreshed until they are.
UPDATE ingest.jobs SET complete = true
WHERE status = 'done' AND finished_at >= ((day + 2)::timestamp AT TIME ZONE 'UTC');

ALTER TABLE ingest.jobs DROP CONSTRAINT jobs_vendor_data_type_time_resolution_params_scope_day_key;
ALTER TABLE ingest.jobs ADD CONSTRAINT jobs_natural_key
    UNIQUE (vendor, account, data_type, time_resolution, params, scope, day);

DROP INDEX ingest.jobs_due;
DROP INDEX ingest.jobs_leased;
DROP INDEX ingest.jobs_exports;
CREATE INDEX jobs_due ON ingest.jobs (vendor, account, run_after) WHERE status = 'pending';
CREATE INDEX jobs_leased ON ingest.jobs (vendor, account, lease_expires_at)
    WHERE status = 'running';
CREATE INDEX jobs_exports ON ingest.jobs (vendor, account, export_query)
    WHERE export_query IS NOT NULL;
CREATE INDEX jobs_open ON ingest.jobs (vendor, account, finished_at)
    WHERE status = 'done' AND NOT complete;

COMMENT ON COLUMN ingest.jobs.account IS
    'The VidiCenter account (host/user) or the Angus stream (client_id) the job belongs to; '
    'empty for a VidiCenter job from before accounts, until `ingest migrate` assigns it.';
COMMENT ON COLUMN ingest.jobs.complete IS
    'Done with the whole day: every location had uploaded past the day''s end plus the settle '
    'margin when it was fetched (Angus: the day had ended). Done but not complete: refreshed.';

-- --- VidiCenter rows --------------------------------------------------------------------
-- The account leads every natural key and every finest slice.

ALTER TABLE vidicenter.viewers ADD COLUMN account text NOT NULL DEFAULT '';
ALTER TABLE vidicenter.viewers DROP CONSTRAINT viewers_natural_key;
ALTER TABLE vidicenter.viewers ADD CONSTRAINT viewers_natural_key
    UNIQUE NULLS NOT DISTINCT (account, location_id, time_resolution, period_start, gender, age);

ALTER TABLE vidicenter.ots ADD COLUMN account text NOT NULL DEFAULT '';
ALTER TABLE vidicenter.ots DROP CONSTRAINT ots_natural_key;
ALTER TABLE vidicenter.ots ADD CONSTRAINT ots_natural_key
    UNIQUE (account, location_id, time_resolution, period_start);

ALTER TABLE vidicenter.gate ADD COLUMN account text NOT NULL DEFAULT '';
ALTER TABLE vidicenter.gate DROP CONSTRAINT gate_natural_key;
ALTER TABLE vidicenter.gate ADD CONSTRAINT gate_natural_key
    UNIQUE (account, location_id, time_resolution, period_start, gate_id);

ALTER TABLE vidicenter.proof_of_play_by_location ADD COLUMN account text NOT NULL DEFAULT '';
ALTER TABLE vidicenter.proof_of_play_by_location
    DROP CONSTRAINT proof_of_play_by_location_natural_key;
ALTER TABLE vidicenter.proof_of_play_by_location
    ADD CONSTRAINT proof_of_play_by_location_natural_key
    UNIQUE (account, location_id, time_resolution, period_start, content_id);

ALTER TABLE vidicenter.proof_of_play_by_site ADD COLUMN account text NOT NULL DEFAULT '';
ALTER TABLE vidicenter.proof_of_play_by_site DROP CONSTRAINT proof_of_play_by_site_natural_key;
ALTER TABLE vidicenter.proof_of_play_by_site ADD CONSTRAINT proof_of_play_by_site_natural_key
    UNIQUE (account, site_id, time_resolution, period_start, content_id);

ALTER TABLE vidicenter.extrapolated_watchers ADD COLUMN account text NOT NULL DEFAULT '';
ALTER TABLE vidicenter.extrapolated_watchers DROP CONSTRAINT extrapolated_watchers_natural_key;
ALTER TABLE vidicenter.extrapolated_watchers ADD CONSTRAINT extrapolated_watchers_natural_key
    UNIQUE (account, scope, extrapolation_amount, time_resolution, period_start);

ALTER TABLE vidicenter.extrapolated_ots ADD COLUMN account text NOT NULL DEFAULT '';
ALTER TABLE vidicenter.extrapolated_ots DROP CONSTRAINT extrapolated_ots_natural_key;
ALTER TABLE vidicenter.extrapolated_ots ADD CONSTRAINT extrapolated_ots_natural_key
    UNIQUE (account, scope, extrapolation_amount, time_resolution, period_start);

ALTER TABLE vidicenter.vehicles ADD COLUMN account text NOT NULL DEFAULT '';
ALTER TABLE vidicenter.vehicles DROP CONSTRAINT vehicles_natural_key;
ALTER TABLE vidicenter.vehicles ADD CONSTRAINT vehicles_natural_key
    UNIQUE (account, location_id, time_resolution, period_start);

ALTER TABLE vidicenter.footfall ADD COLUMN account text NOT NULL DEFAULT '';
ALTER TABLE vidicenter.footfall DROP CONSTRAINT footfall_natural_key;
ALTER TABLE vidicenter.footfall ADD CONSTRAINT footfall_natural_key
    UNIQUE (account, location_id, time_resolution, period_start);

ALTER TABLE vidicenter.vehicles_footfall ADD COLUMN account text NOT NULL DEFAULT '';
ALTER TABLE vidicenter.vehicles_footfall DROP CONSTRAINT vehicles_footfall_natural_key;
ALTER TABLE vidicenter.vehicles_footfall ADD CONSTRAINT vehicles_footfall_natural_key
    UNIQUE (account, location_id, time_resolution, period_start);

ALTER TABLE vidicenter.im ADD COLUMN account text NOT NULL DEFAULT '';
ALTER TABLE vidicenter.im DROP CONSTRAINT im_natural_key;
ALTER TABLE vidicenter.im ADD CONSTRAINT im_natural_key
    UNIQUE (account, location_id, time_resolution, period_start);

ALTER TABLE vidicenter.viewers_finest ADD COLUMN account text NOT NULL DEFAULT '';
DROP INDEX vidicenter.viewers_finest_slice;
CREATE INDEX viewers_finest_slice
    ON vidicenter.viewers_finest (account, location_id, period_start);

ALTER TABLE vidicenter.viewers_apc ADD COLUMN account text NOT NULL DEFAULT '';
DROP INDEX vidicenter.viewers_apc_slice;
CREATE INDEX viewers_apc_slice ON vidicenter.viewers_apc (account, location_id, period_start);

ALTER TABLE vidicenter.vehicles_finest ADD COLUMN account text NOT NULL DEFAULT '';
DROP INDEX vidicenter.vehicles_finest_slice;
CREATE INDEX vehicles_finest_slice
    ON vidicenter.vehicles_finest (account, location_id, period_start);

ALTER TABLE vidicenter.footfall_finest ADD COLUMN account text NOT NULL DEFAULT '';
DROP INDEX vidicenter.footfall_finest_slice;
CREATE INDEX footfall_finest_slice
    ON vidicenter.footfall_finest (account, location_id, period_start);

ALTER TABLE vidicenter.vehicles_footfall_finest ADD COLUMN account text NOT NULL DEFAULT '';
DROP INDEX vidicenter.vehicles_footfall_finest_slice;
CREATE INDEX vehicles_footfall_finest_slice
    ON vidicenter.vehicles_footfall_finest (account, location_id, period_start);

-- --- reporting views -----------------------------------------------------------------
-- The same views, with the account: location ids are per account, so every grouping
-- by location includes it.

DROP VIEW reports.viewers_daily;
DROP VIEW reports.viewers_totals;
DROP VIEW reports.viewers_demographics;
DROP VIEW reports.ots_daily;
DROP VIEW reports.content_audience;
DROP VIEW reports.day_completeness;

CREATE VIEW reports.viewers_totals AS
SELECT account,
       location_id,
       time_resolution,
       period_start,
       watcher_count,
       dwell_time_in_tenths_of_sec,
       attention_time_in_tenths_of_sec,
       dwell_time_in_tenths_of_sec / 10.0     AS dwell_time_s,
       attention_time_in_tenths_of_sec / 10.0 AS attention_time_s,
       conversion_ratio,
       (watcher_count IS NULL AND dwell_time_in_tenths_of_sec IS NULL
        AND attention_time_in_tenths_of_sec IS NULL AND conversion_ratio IS NULL)
                                               AS placeholder
FROM vidicenter.viewers
WHERE gender IS NULL AND age IS NULL;
COMMENT ON VIEW reports.viewers_totals IS
    'Aggregated viewers, total rows only (not the group_by_demographics rows).';

CREATE VIEW reports.viewers_demographics AS
SELECT account,
       location_id,
       time_resolution,
       period_start,
       gender,
       CASE gender WHEN 0 THEN 'unknown' WHEN 1 THEN 'male' WHEN 2 THEN 'female' END
                                               AS gender_label,
       age,
       CASE age WHEN 0 THEN 'unknown' WHEN 1 THEN 'child' WHEN 2 THEN 'young adult'
                WHEN 3 THEN 'adult' WHEN 4 THEN 'senior' END
                                               AS age_label,
       watcher_count,
       dwell_time_in_tenths_of_sec,
       attention_time_in_tenths_of_sec,
       dwell_time_in_tenths_of_sec / 10.0     AS dwell_time_s,
       attention_time_in_tenths_of_sec / 10.0 AS attention_time_s
FROM vidicenter.viewers
WHERE gender IS NOT NULL OR age IS NOT NULL;
COMMENT ON VIEW reports.viewers_demographics IS
    'Aggregated viewers, group_by_demographics rows only; labels NULL for undocumented codes.';

CREATE VIEW reports.viewers_daily AS
SELECT account,
       location_id,
       time_resolution,
       period_start::date                               AS day,
       sum(watcher_count)                               AS watcher_count,
       sum(dwell_time_in_tenths_of_sec) / 10.0          AS dwell_time_s,
       sum(attention_time_in_tenths_of_sec) / 10.0      AS attention_time_s,
       count(*)                                         AS periods,
       count(*) FILTER (WHERE placeholder)              AS placeholder_periods
FROM reports.viewers_totals
WHERE time_resolution IN ('5m', '10m', '15m', '30m', '1h', '1d')
GROUP BY account, location_id, time_resolution, period_start::date;
COMMENT ON VIEW reports.viewers_daily IS
    'Watchers per account, location, day and resolution, from the total rows only.';

CREATE VIEW reports.ots_daily AS
SELECT account,
       location_id,
       time_resolution,
       period_start::date                               AS day,
       sum(ots_count)                                   AS ots_count,
       sum(watcher_count)                               AS watcher_count,
       sum(duration)                                    AS duration_s,
       count(*)                                         AS periods,
       count(*) FILTER (WHERE ots_count IS NULL AND watcher_count IS NULL
                        AND duration IS NULL)           AS placeholder_periods
FROM vidicenter.ots
WHERE time_resolution IN ('5m', '10m', '15m', '30m', '1h', '1d')
GROUP BY account, location_id, time_resolution, period_start::date;
COMMENT ON VIEW reports.ots_daily IS
    'OTS (opportunities to see) per account, location, day and resolution.';

CREATE VIEW reports.content_audience AS
SELECT v.id                                         AS viewers_apc_id,
       v.account,
       v.location_id,
       v.period_start,
       v.gender,
       v.age,
       c.content_id,
       c.app_id,
       c.campaign_id,
       c.dwell_time_in_milliseconds,
       c.attention_time_in_milliseconds,
       c.dwell_time_in_milliseconds / 1000.0        AS dwell_time_s,
       c.attention_time_in_milliseconds / 1000.0    AS attention_time_s
FROM vidicenter.viewers_apc v
JOIN vidicenter.viewers_apc_contents c ON c.viewers_apc_id = v.id;
COMMENT ON VIEW reports.content_audience IS
    'Viewers joined to the contents they saw (viewers_apc); content times in ms and s.';

-- complete: every job of the day done, and done with the whole day (final)
CREATE VIEW reports.day_completeness AS
SELECT vendor,
       account,
       data_type,
       time_resolution,
       day,
       count(*)                                                AS jobs,
       count(*) FILTER (WHERE status = 'done')                 AS done,
       count(*) FILTER (WHERE status = 'done' AND NOT complete) AS open,
       count(*) FILTER (WHERE status = 'pending')              AS pending,
       count(*) FILTER (WHERE status = 'running')              AS running,
       count(*) FILTER (WHERE status = 'dead')                 AS dead,
       bool_and(status = 'done' AND complete)                  AS complete,
       sum(rows_loaded)                                        AS rows_loaded
FROM ingest.jobs
GROUP BY vendor, account, data_type, time_resolution, day;
COMMENT ON VIEW reports.day_completeness IS
    'Jobs per vendor, account, data type, resolution and day by status; open = done with '
    'a day the vendor did not have whole yet; complete = every job done and final.';

-- --- each account's locations, shared by every process ------------------------------

CREATE TABLE ingest.fleets (
    account     text        PRIMARY KEY,
    locations   jsonb       NOT NULL,
    fetched_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ingest.fleets IS
    'Each VidiCenter account''s locations (id, site_id, active, last_timezone, '
    'last_upload_timestamp) as '
    'last listed by /api/v1/locations/, so that processes asking within minutes share one call.';
