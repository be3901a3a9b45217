-- private.base64url: unpadded base64url (RFC 4648 section 5).
BEGIN;
\ir ../../helpers.psql
SELECT plan(13);

-- RFC 4648 section 10 vectors, without padding.
SELECT results_eq($$
  SELECT private.base64url(convert_to(s, 'UTF8'))
    FROM unnest(ARRAY['', 'f', 'fo', 'foo', 'foob', 'fooba', 'foobar']) WITH ORDINALITY AS v(s, n)
   ORDER BY n
$$, $$ VALUES (''), ('Zg'), ('Zm8'), ('Zm9v'), ('Zm9vYg'), ('Zm9vYmE'), ('Zm9vYmFy') $$,
  'RFC 4648 test vectors, unpadded');
SELECT is(private.base64url('\xfbff'::bytea), '-_8', '+ and / become - and _ (0xfbff)');
SELECT is(private.base64url('\xfbef'::bytea), '--8', '0xfbef');
SELECT is(private.base64url('\xffffff'::bytea), '____', '0xffffff');
SELECT is(private.base64url('\x000000'::bytea), 'AAAA', '0x000000');
SELECT is(private.base64url(convert_to('{"alg":"HS256","typ":"JWT"}', 'UTF8')),
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9', 'the usual JWT header');
SELECT is(private.base64url(convert_to('é€😀', 'UTF8')), 'w6nigqzwn5iA', 'multi-byte UTF-8');
-- encode(..., 'base64') wraps lines at 76 characters: no newline may survive.
SELECT is(private.base64url(decode(repeat('ff', 100), 'hex')), repeat('_', 133) || 'w',
  '100 bytes: one line, no newline, no padding');
SELECT is(length(private.base64url(decode(repeat('ab', 1000), 'hex'))), 1334,
  '1000 bytes encode to 1334 characters');
SELECT is_empty($$
  SELECT n FROM generate_series(0, 300) n
   WHERE private.base64url(decode(substr(repeat(md5(n::text), 19), 1, 2 * n), 'hex')) !~ '^[A-Za-z0-9_-]*$'
$$, 'only the base64url alphabet appears (lengths 0..300)');
SELECT is_empty($$
  WITH v AS (SELECT n, decode(substr(repeat(md5(n::text), 19), 1, 2 * n), 'hex') AS b
               FROM generate_series(0, 300) n),
       e AS (SELECT n, b, private.base64url(b) AS s FROM v)
  SELECT n FROM e
   WHERE decode(rpad(translate(s, '-_', '+/'), (length(s) + 3) / 4 * 4, '='), 'base64') <> b
      OR length(s) <> ceil(length(b) * 4 / 3.0)
$$, 'decodes back to the input, with the unpadded length, for lengths 0..300');
SELECT is(private.base64url(NULL), NULL, 'NULL gives NULL');
SELECT volatility_is('private', 'base64url', ARRAY['bytea'], 'immutable', 'base64url is IMMUTABLE');

SELECT * FROM finish();
ROLLBACK;
