-- Reporting views: the common questions answered without double counting.
-- docs/data-guide.md describes them; tests/integration/test_views.py pins their sums.
--
-- They live in their own schema, `reports`, so that their names never collide with a
-- table of the vidicenter schema (one per data type, more may come). Times stay as the
-- vendor delivered them (timestamp without time zone); a row's day is period_start::date.
-- Durations get a column in seconds next to the vendor's tenths or milliseconds.
CREATE SCHEMA IF NOT EXISTS reports;
COMMENT ON SCHEMA reports IS
    'Views over the vidicenter, angus and ingest tables for reporting; see docs/data-guide.md.';

-- vidicenter.viewers holds two kinds of rows: totals (gender and age NULL) and, when a
-- job asked for group_by_demographics, one row per gender and age group. Summing the
-- table counts every watcher twice; these two views split it.
CREATE VIEW reports.viewers_totals AS
SELECT location_id,
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
SELECT location_id,
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

-- Daily sums of the totals rows, per resolution: rows of several resolutions of one
-- location (1h and 15m, say) describe the same watchers, so they are never added up
-- together. Only resolutions of a day or less: a 7d row does not belong to one day.
CREATE VIEW reports.viewers_daily AS
SELECT location_id,
       time_resolution,
       period_start::date                               AS day,
       sum(watcher_count)                               AS watcher_count,
       sum(dwell_time_in_tenths_of_sec) / 10.0          AS dwell_time_s,
       sum(attention_time_in_tenths_of_sec) / 10.0      AS attention_time_s,
       count(*)                                         AS periods,
       count(*) FILTER (WHERE placeholder)              AS placeholder_periods
FROM reports.viewers_totals
WHERE time_resolution IN ('5m', '10m', '15m', '30m', '1h', '1d')
GROUP BY location_id, time_resolution, period_start::date;
COMMENT ON VIEW reports.viewers_daily IS
    'Watchers per location, day and resolution, from the total rows only.';

CREATE VIEW reports.ots_daily AS
SELECT location_id,
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
GROUP BY location_id, time_resolution, period_start::date;
COMMENT ON VIEW reports.ots_daily IS
    'OTS (opportunities to see) per location, day and resolution.';

-- One row per (viewer, content played while they watched). The viewer's own columns
-- repeat for each of their contents: count viewers with count(DISTINCT viewers_apc_id).
CREATE VIEW reports.content_audience AS
SELECT v.id                                         AS viewers_apc_id,
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

-- Whether a day is complete in the ledger: every job of it done.
CREATE VIEW reports.day_completeness AS
SELECT vendor,
       data_type,
       time_resolution,
       day,
       count(*)                                      AS jobs,
       count(*) FILTER (WHERE status = 'done')       AS done,
       count(*) FILTER (WHERE status = 'pending')    AS pending,
       count(*) FILTER (WHERE status = 'running')    AS running,
       count(*) FILTER (WHERE status = 'dead')       AS dead,
       bool_and(status = 'done')                     AS complete,
       sum(rows_loaded)                              AS rows_loaded
FROM ingest.jobs
GROUP BY vendor, data_type, time_resolution, day;
COMMENT ON VIEW reports.day_completeness IS
    'Jobs per vendor, data type, resolution and day by status; complete = every job done.';
