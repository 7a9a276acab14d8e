-- The export build times each VidiCenter account's exports took, as their polls told them
-- (ingest/vendors/builds.py): a new process, a backfill or another replica puts its first
-- poll after the build it expects instead of probing from scratch.
--
-- Bounded: the ledger keeps the newest builds of each (account, kind) and deletes the rest
-- as it adds one (ingest/ledger/builds.py).
CREATE TABLE ingest.build_times (
    id            bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account       text             NOT NULL,
    kind          text             NOT NULL,
    expected_rows bigint           NOT NULL CHECK (expected_rows > 0),
    build_s       double precision NOT NULL CHECK (build_s >= 0),
    seen_at       timestamptz      NOT NULL DEFAULT now()
);

-- the newest builds of an account's kind: what a process reads at its start, and trims
CREATE INDEX build_times_recent ON ingest.build_times (account, kind, id DESC);

COMMENT ON TABLE ingest.build_times IS
    'Build times of VidiCenter exports, newest kept per account and kind, shared by every process.';
COMMENT ON COLUMN ingest.build_times.account IS 'The VidiCenter account: host/user.';
COMMENT ON COLUMN ingest.build_times.kind IS
    'What a build time depends on besides size: data_type:time_resolution (viewers:1h).';
COMMENT ON COLUMN ingest.build_times.expected_rows IS 'The rows the export was expected to hold.';
COMMENT ON COLUMN ingest.build_times.build_s IS
    'Seconds from the request that started the build to its end, as well as the polls tell it.';
