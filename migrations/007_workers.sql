-- Worker presence: which lease owners are alive, so that export places held by a worker
-- that died are visible before their leases run out.
CREATE TABLE ingest.workers (
    owner      text        PRIMARY KEY,  -- the lease owner name: host:pid:suffix
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE ingest.workers IS
    'One row per working process, beaten every few seconds; a silent one is gone.';
COMMENT ON COLUMN ingest.vendor_calls.finished_at IS
    'When the call stopped holding its connection place: its end, or for a call given up on '
    '(timed out) while the vendor may still serve it, a time after it.';
