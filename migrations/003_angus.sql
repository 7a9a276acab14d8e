-- Angus.ai audience entities: one row per stream, time bucket and bucket start.
CREATE TABLE angus.entities (
    stream          text             NOT NULL,
    time_bucket     text             NOT NULL CHECK (time_bucket IN ('by_hour', 'by_day', 'global')),
    period_start    timestamptz      NOT NULL,
    passing_by      integer,
    interested      integer,
    stop_time       double precision,
    attention_time  double precision,
    gender          jsonb,
    category        jsonb,
    satisfaction    jsonb,
    extra           jsonb            NOT NULL DEFAULT '{}',
    ingested_at     timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT entities_natural_key UNIQUE (stream, time_bucket, period_start)
);

COMMENT ON TABLE angus.entities IS
    'Angus.ai audience metrics per stream (client_id) and time bucket, as delivered by the '
    'Data API entities endpoint. Re-ingesting a window updates its rows in place.';
COMMENT ON COLUMN angus.entities.stream IS 'The stream''s client_id.';
COMMENT ON COLUMN angus.entities.period_start IS
    'Start of the bucket; for time_bucket = ''global'', the start of the requested window.';
COMMENT ON COLUMN angus.entities.passing_by IS
    'People who passed by. NULL when the metric was not delivered (never an invented zero).';
COMMENT ON COLUMN angus.entities.interested IS
    'People who looked. NULL when the metric was not delivered (never an invented zero).';
COMMENT ON COLUMN angus.entities.stop_time IS
    'Average stop time in seconds over interested people; NULL when not delivered or null.';
COMMENT ON COLUMN angus.entities.attention_time IS
    'Average attention time in seconds over interested people; NULL when not delivered or null.';
COMMENT ON COLUMN angus.entities.gender IS 'Counts by gender ("?", female, male), as delivered.';
COMMENT ON COLUMN angus.entities.category IS
    'Counts by age-gender category (senior_female, ...), as delivered.';
COMMENT ON COLUMN angus.entities.satisfaction IS 'As delivered (no documented shape).';
COMMENT ON COLUMN angus.entities.extra IS
    'Metrics and keys the vendor sent that have no column of their own.';
