-- VidiCenter: one table per data type (ingest/datatypes.py is the registry these follow;
-- tests/unit/test_datatypes.py checks that the two agree).
--
-- Columns are the vendor's JSON keys, verbatim. period_start is the row's time exactly as
-- delivered (timestamp without time zone). Metrics are nullable: placeholder rows keep
-- their NULLs. Enumerations are plain integers, stored as delivered. `extra` holds the
-- keys the vendor sent that a table has no column for.
--
-- Aggregated tables are upserted on their natural key (constraint <table>_natural_key).
-- Finest tables have no natural key: the loader replaces a (location_id, day) slice.

-- --- aggregated tables ---------------------------------------------------------------

CREATE TABLE vidicenter.viewers (
    location_id                      bigint           NOT NULL,
    time_resolution                  text             NOT NULL,
    period_start                     timestamp        NOT NULL,
    gender                           integer,
    age                              integer,
    watcher_count                    bigint,
    dwell_time_in_tenths_of_sec      double precision,
    attention_time_in_tenths_of_sec  double precision,
    conversion_ratio                 double precision,
    extra                            jsonb            NOT NULL DEFAULT '{}',
    ingested_at                      timestamptz      NOT NULL DEFAULT now(),
    -- plain rows have NULL gender and age; they are still one row per period
    CONSTRAINT viewers_natural_key
        UNIQUE NULLS NOT DISTINCT (location_id, time_resolution, period_start, gender, age)
);
COMMENT ON TABLE vidicenter.viewers IS
    'VidiCenter aggregated viewers; gender and age are set only in group_by_demographics rows.';

CREATE TABLE vidicenter.ots (
    location_id      bigint           NOT NULL,
    time_resolution  text             NOT NULL,
    period_start     timestamp        NOT NULL,
    ots_count        bigint,
    duration         double precision,
    watcher_count    bigint,
    extra            jsonb            NOT NULL DEFAULT '{}',
    ingested_at      timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT ots_natural_key UNIQUE (location_id, time_resolution, period_start)
);
COMMENT ON TABLE vidicenter.ots IS
    'VidiCenter aggregated OTS (opportunities to see); a row''s own "status" key is kept in extra.';

CREATE TABLE vidicenter.gate (
    location_id      bigint           NOT NULL,
    time_resolution  text             NOT NULL,
    period_start     timestamp        NOT NULL,
    gate_id          bigint           NOT NULL,
    in_count         bigint,
    out_count        bigint,
    duration         double precision,
    extra            jsonb            NOT NULL DEFAULT '{}',
    ingested_at      timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT gate_natural_key UNIQUE (location_id, time_resolution, period_start, gate_id)
);
COMMENT ON TABLE vidicenter.gate IS 'VidiCenter aggregated gate counts, one row per gate.';

CREATE TABLE vidicenter.proof_of_play_by_location (
    location_id                            bigint           NOT NULL,
    time_resolution                        text             NOT NULL,
    period_start                           timestamp        NOT NULL,
    content_id                             text             NOT NULL,
    content_duration                       double precision,
    duration                               double precision,
    impressions                            double precision,
    play_count                             bigint,
    impressions_per_play                   double precision,
    watchers                               bigint,
    watchers_2sec                          bigint,
    total_dwell_time_in_tenths_of_sec      double precision,
    total_attention_time_in_tenths_of_sec  double precision,
    extra                                  jsonb            NOT NULL DEFAULT '{}',
    ingested_at                            timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT proof_of_play_by_location_natural_key
        UNIQUE (location_id, time_resolution, period_start, content_id)
);
COMMENT ON TABLE vidicenter.proof_of_play_by_location IS
    'VidiCenter proof of play per location and content.';

CREATE TABLE vidicenter.proof_of_play_by_site (
    site_id                                bigint           NOT NULL,
    time_resolution                        text             NOT NULL,
    period_start                           timestamp        NOT NULL,
    content_id                             text             NOT NULL,
    content_duration                       double precision,
    duration                               double precision,
    impressions                            double precision,
    play_count                             bigint,
    impressions_per_play                   double precision,
    watchers                               bigint,
    watchers_2sec                          bigint,
    total_dwell_time_in_tenths_of_sec      double precision,
    total_attention_time_in_tenths_of_sec  double precision,
    extra                                  jsonb            NOT NULL DEFAULT '{}',
    ingested_at                            timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT proof_of_play_by_site_natural_key
        UNIQUE (site_id, time_resolution, period_start, content_id)
);
COMMENT ON TABLE vidicenter.proof_of_play_by_site IS
    'VidiCenter proof of play per site and content.';

-- Extrapolated rows have no location_id: they belong to the requested scope
-- (e.g. 'locations:1,2,3') and extrapolation amount ('' = average of the sampled locations).
-- Their figures are scaled or averaged, so even the counts are double precision.
CREATE TABLE vidicenter.extrapolated_watchers (
    scope                            text             NOT NULL,
    extrapolation_amount             text             NOT NULL,
    time_resolution                  text             NOT NULL,
    period_start                     timestamp        NOT NULL,
    watcher_count                    double precision,
    dwell_time_in_tenths_of_sec      double precision,
    attention_time_in_tenths_of_sec  double precision,
    extra                            jsonb            NOT NULL DEFAULT '{}',
    ingested_at                      timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT extrapolated_watchers_natural_key
        UNIQUE (scope, extrapolation_amount, time_resolution, period_start)
);
COMMENT ON TABLE vidicenter.extrapolated_watchers IS
    'VidiCenter extrapolated watchers, per requested scope and extrapolation amount.';

CREATE TABLE vidicenter.extrapolated_ots (
    scope                 text             NOT NULL,
    extrapolation_amount  text             NOT NULL,
    time_resolution       text             NOT NULL,
    period_start          timestamp        NOT NULL,
    ots_count             double precision,
    duration              double precision,
    watcher_count         double precision,
    extra                 jsonb            NOT NULL DEFAULT '{}',
    ingested_at           timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT extrapolated_ots_natural_key
        UNIQUE (scope, extrapolation_amount, time_resolution, period_start)
);
COMMENT ON TABLE vidicenter.extrapolated_ots IS
    'VidiCenter extrapolated OTS, per requested scope and extrapolation amount.';

CREATE TABLE vidicenter.vehicles (
    location_id              bigint           NOT NULL,
    time_resolution          text             NOT NULL,
    period_start             timestamp        NOT NULL,
    vehicle_count            bigint,
    vehicle_presence_time    double precision,
    vehicle_impressions      double precision,
    impressions_per_vehicle  double precision,
    extra                    jsonb            NOT NULL DEFAULT '{}',
    ingested_at              timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT vehicles_natural_key UNIQUE (location_id, time_resolution, period_start)
);
COMMENT ON TABLE vidicenter.vehicles IS 'VidiCenter aggregated vehicles.';

CREATE TABLE vidicenter.footfall (
    location_id             bigint           NOT NULL,
    time_resolution         text             NOT NULL,
    period_start            timestamp        NOT NULL,
    footfall_impressions    double precision,
    footfall_presence_time  double precision,
    extra                   jsonb            NOT NULL DEFAULT '{}',
    ingested_at             timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT footfall_natural_key UNIQUE (location_id, time_resolution, period_start)
);
COMMENT ON TABLE vidicenter.footfall IS 'VidiCenter aggregated footfall (formerly "persons").';

CREATE TABLE vidicenter.vehicles_footfall (
    location_id              bigint           NOT NULL,
    time_resolution          text             NOT NULL,
    period_start             timestamp        NOT NULL,
    vehicle_count            bigint,
    vehicle_impressions      double precision,
    vehicle_presence_time    double precision,
    impressions_per_vehicle  double precision,
    footfall_impressions     double precision,
    footfall_presence_time   double precision,
    extra                    jsonb            NOT NULL DEFAULT '{}',
    ingested_at              timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT vehicles_footfall_natural_key UNIQUE (location_id, time_resolution, period_start)
);
COMMENT ON TABLE vidicenter.vehicles_footfall IS
    'VidiCenter aggregated vehicles and footfall (formerly "vehicles_persons").';

CREATE TABLE vidicenter.im (
    location_id                  bigint           NOT NULL,
    time_resolution              text             NOT NULL,
    period_start                 timestamp        NOT NULL,
    vehicle_count                bigint,
    vehicle_total_presence_time  double precision,
    vehicle_impressions          double precision,
    impressions_per_vehicle      double precision,
    footfall_impressions         double precision,
    footfall_total_dwell_time    double precision,
    im_footfall                  double precision,
    im_vehicle                   double precision,
    im                           double precision,
    backup_value                 text,
    analysis_window              double precision,
    extra                        jsonb            NOT NULL DEFAULT '{}',
    ingested_at                  timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT im_natural_key UNIQUE (location_id, time_resolution, period_start)
);
COMMENT ON TABLE vidicenter.im IS
    'VidiCenter impression multipliers (1h only); backup_value ''yes'' = estimated from the previous week.';

-- --- finest tables (raw events) --------------------------------------------------------

CREATE TABLE vidicenter.viewers_finest (
    location_id                      bigint           NOT NULL,
    period_start                     timestamp        NOT NULL,
    gender                           integer,
    age                              integer,
    glasses                          integer,
    mustache                         integer,
    beard                            integer,
    age_value                        double precision,
    dwell_time_in_tenths_of_sec      double precision,
    attention_time_in_tenths_of_sec  double precision,
    very_happy                       double precision,
    happy                            double precision,
    neutral                          double precision,
    unhappy                          double precision,
    very_unhappy                     double precision,
    extra                            jsonb            NOT NULL DEFAULT '{}',
    ingested_at                      timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX viewers_finest_slice ON vidicenter.viewers_finest (location_id, period_start);
COMMENT ON TABLE vidicenter.viewers_finest IS
    'VidiCenter raw viewer events; re-ingesting replaces a (location_id, day) slice.';

-- The loader takes ids for a whole batch with nextval('vidicenter.viewers_apc_id_seq') before
-- the COPY, so that the contents can point at their viewer in the same COPY pass.
CREATE SEQUENCE vidicenter.viewers_apc_id_seq AS bigint;

CREATE TABLE vidicenter.viewers_apc (
    id                               bigint           PRIMARY KEY
                                     DEFAULT nextval('vidicenter.viewers_apc_id_seq'),
    location_id                      bigint           NOT NULL,
    period_start                     timestamp        NOT NULL,
    gender                           integer,
    age                              integer,
    glasses                          integer,
    mustache                         integer,
    beard                            integer,
    age_value                        double precision,
    dwell_time_in_tenths_of_sec      double precision,
    attention_time_in_tenths_of_sec  double precision,
    very_happy                       double precision,
    happy                            double precision,
    neutral                          double precision,
    unhappy                          double precision,
    very_unhappy                     double precision,
    extra                            jsonb            NOT NULL DEFAULT '{}',
    ingested_at                      timestamptz      NOT NULL DEFAULT now()
);
ALTER SEQUENCE vidicenter.viewers_apc_id_seq OWNED BY vidicenter.viewers_apc.id;
CREATE INDEX viewers_apc_slice ON vidicenter.viewers_apc (location_id, period_start);
COMMENT ON TABLE vidicenter.viewers_apc IS
    'VidiCenter raw viewer events that have content data (the vendor''s start_time is period_start).';
COMMENT ON COLUMN vidicenter.viewers_apc.id IS
    'Surrogate id from vidicenter.viewers_apc_id_seq, taken in bulk by the loader.';

CREATE TABLE vidicenter.viewers_apc_contents (
    viewers_apc_id                  bigint           NOT NULL
                                    REFERENCES vidicenter.viewers_apc (id) ON DELETE CASCADE,
    content_id                      text,
    app_id                          text,
    campaign_id                     text,
    dwell_time_in_milliseconds      double precision,
    attention_time_in_milliseconds  double precision,
    very_happy_time                 double precision,
    happy_time                      double precision,
    neutral_time                    double precision,
    unhappy_time                    double precision,
    very_unhappy_time               double precision,
    extra                           jsonb            NOT NULL DEFAULT '{}',
    ingested_at                     timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX viewers_apc_contents_viewer ON vidicenter.viewers_apc_contents (viewers_apc_id);
COMMENT ON TABLE vidicenter.viewers_apc_contents IS
    'The contents played while a viewers_apc viewer was in front of the camera (times in ms); '
    'replaced with their viewer.';

CREATE TABLE vidicenter.vehicles_finest (
    location_id              bigint           NOT NULL,
    period_start             timestamp        NOT NULL,
    type                     integer,
    color                    integer,
    vehicle_presence_time    double precision,
    vehicle_impressions      double precision,
    impressions_per_vehicle  double precision,
    extra                    jsonb            NOT NULL DEFAULT '{}',
    ingested_at              timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX vehicles_finest_slice ON vidicenter.vehicles_finest (location_id, period_start);
COMMENT ON TABLE vidicenter.vehicles_finest IS
    'VidiCenter raw vehicle events; re-ingesting replaces a (location_id, day) slice.';

CREATE TABLE vidicenter.footfall_finest (
    location_id             bigint           NOT NULL,
    period_start            timestamp        NOT NULL,
    footfall_presence_time  double precision,
    extra                   jsonb            NOT NULL DEFAULT '{}',
    ingested_at             timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX footfall_finest_slice ON vidicenter.footfall_finest (location_id, period_start);
COMMENT ON TABLE vidicenter.footfall_finest IS
    'VidiCenter raw footfall (person) events; re-ingesting replaces a (location_id, day) slice.';

CREATE TABLE vidicenter.vehicles_footfall_finest (
    location_id              bigint           NOT NULL,
    period_start             timestamp        NOT NULL,
    type                     integer,
    color                    integer,
    vehicle_presence_time    double precision,
    vehicle_impressions      double precision,
    impressions_per_vehicle  double precision,
    footfall_presence_time   double precision,
    extra                    jsonb            NOT NULL DEFAULT '{}',
    ingested_at              timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX vehicles_footfall_finest_slice
    ON vidicenter.vehicles_footfall_finest (location_id, period_start);
COMMENT ON TABLE vidicenter.vehicles_footfall_finest IS
    'VidiCenter raw events, each a vehicle or a person (the other''s keys are void); '
    're-ingesting replaces a (location_id, day) slice.';
