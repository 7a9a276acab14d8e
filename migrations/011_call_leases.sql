-- A call's connection place is a lease (ingest.budget.CallBudget): finished_at is set when
-- the call starts and renewed while it runs.
COMMENT ON COLUMN ingest.vendor_calls.finished_at IS
    'Until when the call holds its connection place: a lease from its start, renewed while '
    'it runs (an export''s answer downloading); its end once it ended; for a call given up '
    'on (timed out) while the vendor may still serve it, a time after that.';
