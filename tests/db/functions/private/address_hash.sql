-- private.address_key (one canonical form per address), private.address_hash (the
-- peppered one-way key) and private.lock_addresses (the per-address lock).
BEGIN;
\ir ../../helpers.psql
SELECT plan(11);

SELECT is(ARRAY[private.address_key('+14155550100'), private.address_key(' Someone@Example.COM '),
                private.address_key('first.last+tag@sub.example.co.uk')],
  ARRAY['+14155550100', 'someone@example.com', 'first.last+tag@sub.example.co.uk'],
  'E.164 as it is; emails trimmed and lower-cased');
SELECT is(ARRAY[private.address_key('+1 415 555 0100'), private.address_key('14155550100'), private.address_key('(415) 555-0100'),
                private.address_key('+0123456789'), private.address_key('+1234567890123456'), private.address_key('no@tld'),
                private.address_key('two@@example.com'), private.address_key('sp ace@example.com'), private.address_key(''),
                private.address_key(NULL)],
  ARRAY[NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL]::text[],
  'anything else has no key: formatted or national numbers, bad E.164, malformed emails, empty, NULL');
SELECT is(ARRAY[private.address_key('fcm-token-0123456789abcdef'),
                private.address_key('dGhpcyBpcyBh:APA91bH-x_y.z0123456789ABCDEFabcdef')],
  ARRAY['fcm-token-0123456789abcdef', 'dGhpcyBpcyBh:APA91bH-x_y.z0123456789ABCDEFabcdef'],
  'push registration tokens: kept as given (case-sensitive)');
SELECT is(ARRAY[private.address_key('short-token-1'), private.address_key('not-a-phone-number'),
                private.address_key('4155550100415555010041555501004155550100'), private.address_key('token with spaces 0123456789'),
                private.address_key(repeat('a1', 2049))],
  ARRAY[NULL, NULL, NULL, NULL, NULL]::text[],
  'not tokens: under 16 characters, no digit, digits only, spaces, over 4096 characters');
SELECT is(length(private.address_hash('+14155550100')), 32, 'the hash is 32 bytes (sha256)');
SELECT is(private.address_hash('+14155550100'), private.address_hash('+14155550100'), 'deterministic');
SELECT isnt(private.address_hash('+14155550100'), private.address_hash('+14155550101'), 'distinct addresses, distinct hashes');
SELECT isnt(private.address_hash('+14155550100'), sha256(convert_to('+14155550100', 'UTF8')),
  'peppered: not the bare sha256 of the address (a phone number''s space is small)');
SELECT is(private.address_hash('+14155550100'),
  sha256(convert_to((SELECT value FROM private.settings WHERE key = 'address_pepper') || '+14155550100', 'UTF8')),
  'sha256(pepper || address)');
SELECT lives_ok($$SELECT private.lock_addresses(ARRAY[private.address_hash('+14155550100'), NULL,
                                                       private.address_hash('+14155550100')])$$,
  'locking takes duplicates and NULLs');
SELECT ok((SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) >= 1,
  'the transaction holds the address''s advisory lock');

SELECT * FROM finish();
ROLLBACK;
