-- Ranks that make status changes monotonic: a change applies only to a higher rank,
-- so duplicate and out-of-order receipts never move a message backwards, and the
-- first terminal status (rank 100) is the only one. Not STRICT (a STRICT SQL function
-- with a CASE body is never inlined): the planner inlines it into the set-based
-- statements that use it.
CREATE OR REPLACE FUNCTION private.message_status_rank(p_status text)
RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE p_status
    WHEN 'scheduled' THEN 0
    WHEN 'queued' THEN 0
    WHEN 'sending' THEN 10
    WHEN 'sent' THEN 20
    WHEN 'delivered' THEN 100
    WHEN 'undelivered' THEN 100
    WHEN 'failed' THEN 100
    WHEN 'rejected' THEN 100
    WHEN 'unknown' THEN 100
  END
$$;
COMMENT ON FUNCTION private.message_status_rank(text) IS 'Order of message statuses; 100 = terminal.';

