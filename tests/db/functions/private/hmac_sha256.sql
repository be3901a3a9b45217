-- private.hmac_sha256: HMAC-SHA256 (RFC 2104) built on sha256(), against the RFC 4231
-- test vectors and, when pgcrypto is installed, against pgcrypto's hmac().
BEGIN;
\ir ../../helpers.psql
SELECT plan(13);

SELECT is(encode(private.hmac_sha256(decode(repeat('0b', 20), 'hex'), convert_to('Hi There', 'UTF8')), 'hex'),
  'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
  'RFC 4231 test case 1 (20-byte key)');
SELECT is(encode(private.hmac_sha256(convert_to('Jefe', 'UTF8'),
                                     convert_to('what do ya want for nothing?', 'UTF8')), 'hex'),
  '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
  'RFC 4231 test case 2 (key shorter than the output)');
SELECT is(encode(private.hmac_sha256(decode(repeat('aa', 20), 'hex'), decode(repeat('dd', 50), 'hex')), 'hex'),
  '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe',
  'RFC 4231 test case 3 (50 bytes of 0xdd)');
SELECT is(encode(private.hmac_sha256(decode('0102030405060708090a0b0c0d0e0f10111213141516171819', 'hex'),
                                     decode(repeat('cd', 50), 'hex')), 'hex'),
  '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b',
  'RFC 4231 test case 4 (25-byte key)');
SELECT is(left(encode(private.hmac_sha256(decode(repeat('0c', 20), 'hex'),
                                          convert_to('Test With Truncation', 'UTF8')), 'hex'), 32),
  'a3b6167473100ee06e0c796c2955552b',
  'RFC 4231 test case 5 (truncated to 128 bits)');
SELECT is(encode(private.hmac_sha256(decode(repeat('aa', 131), 'hex'),
    convert_to('Test Using Larger Than Block-Size Key - Hash Key First', 'UTF8')), 'hex'),
  '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
  'RFC 4231 test case 6 (131-byte key > block size: hashed first)');
SELECT is(encode(private.hmac_sha256(decode(repeat('aa', 131), 'hex'),
    convert_to('This is a test using a larger than block-size key and a larger than block-size data. '
               'The key needs to be hashed before being used by the HMAC algorithm.', 'UTF8')), 'hex'),
  '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
  'RFC 4231 test case 7 (large key and large data)');
SELECT is(encode(private.hmac_sha256(''::bytea, ''::bytea), 'hex'),
  'b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad',
  'empty key and empty message');
SELECT is(length(private.hmac_sha256(decode(repeat('11', 64), 'hex'), 'x'::bytea)), 32,
  'a key of exactly one block (64 bytes) works and gives 32 bytes');
SELECT isnt(private.hmac_sha256(decode(repeat('11', 64), 'hex'), 'x'::bytea),
            private.hmac_sha256(decode(repeat('11', 65), 'hex'), 'x'::bytea),
  'a 65-byte key differs from its 64-byte prefix');
SELECT is(private.hmac_sha256(NULL, 'x'::bytea), NULL, 'NULL key gives NULL (STRICT)');
SELECT is(private.hmac_sha256('k'::bytea, NULL), NULL, 'NULL message gives NULL (STRICT)');

-- Every key length from 0 to 200 bytes, with messages around the block boundaries.
SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto') AS have_pgcrypto \gset
\if :have_pgcrypto
CREATE SCHEMA hmac_reference;
CREATE EXTENSION pgcrypto SCHEMA hmac_reference;
SELECT is_empty($$
  WITH k AS (SELECT n, decode(substr(repeat(md5(n::text), 13), 1, 2 * n), 'hex') AS key
               FROM generate_series(0, 200) n),
       m AS (SELECT l, decode(substr(repeat(md5('m' || l), 63), 1, 2 * l), 'hex') AS msg
               FROM unnest(ARRAY[0, 1, 55, 56, 63, 64, 65, 119, 1000]) l)
  SELECT k.n AS key_length, m.l AS message_length FROM k, m
   WHERE private.hmac_sha256(k.key, m.msg) IS DISTINCT FROM hmac_reference.hmac(m.msg, k.key, 'sha256')
$$, 'equals pgcrypto''s hmac(sha256) for every key length 0..200 and 9 message lengths');
\else
SELECT skip('pgcrypto is not installed: no cross-check', 1);
\endif

SELECT * FROM finish();
ROLLBACK;
