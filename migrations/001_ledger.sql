-- Schemas and the job ledger.
CREATE SCHEMA IF NOT EXISTS ingest;
CREATE SCHEMA IF NOT EXISTS vidicenter;
CREATE SCHEMA IF NOT EXISTS angus;

CREATE TABLE ingest.jobs (
    id               bigserial PRIMARY KEY,
    vendor           text        NOT NULL CHECK (vendor IN ('vidicenter', 'angus')),
    data_type        text        NOT NULL,
    time_resolution  text        NOT NULL,
    params           jsonb       NOT NULL DEFAULT '{}',
    scope            text        NOT NULL,
    day              date        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'done', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text,
    rows_loaded      bigint,
    force            boolean     NOT NULL DEFAULT false,
    run_after        timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    export_query     text,
    export_reserved_at timestamptz,
    export_started_at timestamptz,
    export_rebuilds  integer     NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    UNIQUE (vendor, data_type, time_resolution, params, scope, day)
);

COMMENT ON TABLE ingest.jobs IS
    'One row per (vendor, data type, resolution, request parameters, scope, day).';
COMMENT ON COLUMN ingest.jobs.export_query IS
    'The exact VidiCenter query of the export this job rides on, kept so a restart resumes it.';
COMMENT ON COLUMN ingest.jobs.export_reserved_at IS
    'When the export took one of the account''s export places; it holds it until cleared.';
COMMENT ON COLUMN ingest.jobs.export_started_at IS
    'When the vendor first answered for the export (so a forced rebuild is not sent twice).';

-- the dispatcher's scan: due pending jobs, and running jobs whose lease ran out
CREATE INDEX jobs_due ON ingest.jobs (vendor, run_after) WHERE status = 'pending';
CREATE INDEX jobs_leased ON ingest.jobs (vendor, lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_exports ON ingest.jobs (vendor, export_query) WHERE export_query IS NOT NULL;

-- Vendor calls of every worker process: the shared per-account call budget.
CREATE TABLE ingest.vendor_calls (
    id          bigserial PRIMARY KEY,
    account     text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz
);
CREATE INDEX vendor_calls_recent ON ingest.vendor_calls (account, started_at);

COMMENT ON TABLE ingest.vendor_calls IS
    'Calls made to a vendor account by any worker, for the shared rate and connection budget.';
