-- Ranks that make status changes monotonic: a change applies only to a higher rank,
-- so duplicate and out-of-order receipts never move a message backwards, and the
-- first terminal status (rank 100) is the only one.
CREATE OR REPLACE FUNCTION private.message_status_rank(p_status text)
RETURNS int
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
  SELECT CASE p_status
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

-- Twilio's documented message statuses, in their life-cycle order, and the message
-- status each one means. read (WhatsApp) implies delivered, and can arrive first.
CREATE OR REPLACE FUNCTION private.twilio_status(p_status text, OUT rank int, OUT message_status text)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
  SELECT r.rank, r.message_status
  FROM (VALUES
    ('accepted', 10, 'sent'), ('scheduled', 10, 'sent'), ('queued', 20, 'sent'),
    ('sending', 30, 'sent'), ('sent', 40, 'sent'),
    ('delivered', 100, 'delivered'), ('undelivered', 100, 'undelivered'),
    ('failed', 100, 'failed'), ('canceled', 100, 'failed'),
    ('read', 110, 'delivered')) AS r(status, rank, message_status)
  WHERE r.status = p_status
$$;
COMMENT ON FUNCTION private.twilio_status(text) IS
  'Rank of a Twilio MessageStatus and the Hermes message status it implies (NULL if unknown).';
