-- private.normalize_phone: E.164 or NULL.
BEGIN;
\ir ../../helpers.psql

CREATE TEMP TABLE cases (n serial, input text, expected text, what text);
INSERT INTO cases (input, expected, what) VALUES
  ('+14155550123', '+14155550123', 'already E.164'),
  ('+1 415 555 0123', '+14155550123', 'spaces'),
  ('+1 (415) 555-0123', '+14155550123', 'parentheses and dash'),
  ('+1.415.555.0123', '+14155550123', 'dots'),
  ('+1-415-555-0123', '+14155550123', 'dashes'),
  ('  +44 20 7946 0958  ', '+442079460958', 'surrounding blanks'),
  (E'+1\t415\n555 0123', '+14155550123', 'tab and newline'),
  ('0044 20 7946 0958', '+442079460958', '00 international prefix'),
  ('+44 (0)20 7946 0958', '+442079460958', 'trunk (0) after the country code is dropped'),
  ('+44(0)2079460958', '+442079460958', 'trunk (0), no spaces'),
  ('001-415-555-0123', '+14155550123', '00 prefix then dashes'),
  ('(+1) 415 555 0123', '+14155550123', 'parenthesised country code'),
  ('+1234567', '+1234567', 'shortest: 7 digits'),
  ('+123456789012345', '+123456789012345', 'longest: 15 digits'),
  ('+123456', NULL, 'too short: 6 digits'),
  ('+1234567890123456', NULL, 'too long: 16 digits'),
  ('+0123456789', NULL, 'leading 0 after +'),
  ('+0044 20 7946 0958', NULL, '+ then 00'),
  ('000441234567', NULL, '00 prefix then a 0'),
  ('4155550123', NULL, 'no + (national number)'),
  ('0612345678', NULL, 'national number with trunk 0'),
  ('++14155550123', NULL, 'double +'),
  ('14155550123+', NULL, '+ at the end'),
  ('+1 415 CALL NOW', NULL, 'letters'),
  ('+1415555O123', NULL, 'letter O for zero'),
  ('+1-415-555-0123 ext 4', NULL, 'extension'),
  ('+1/415/555/0123', NULL, 'slashes are not separators'),
  ('+1_415_555_0123', NULL, 'underscores are not separators'),
  ('+١٤١٥٥٥٥٠١٢٣', NULL, 'Arabic-Indic digits'),
  ('+１４１５５５５０１２３', NULL, 'full-width digits'),
  ('＋14155550123', NULL, 'full-width plus'),
  ('', NULL, 'empty'),
  ('   ', NULL, 'blanks only'),
  ('+', NULL, 'a lone +'),
  ('00', NULL, 'a lone 00'),
  (NULL, NULL, 'NULL');

SELECT plan((SELECT count(*)::int FROM cases) + 1);
SELECT is(private.normalize_phone(input), expected,
          format('%s: %s -> %s', what, coalesce(quote_literal(input), 'NULL'), coalesce(expected, 'NULL')))
  FROM cases ORDER BY n;
SELECT is_empty($$
  SELECT input FROM cases
   WHERE private.normalize_phone(input) IS NOT NULL
     AND private.normalize_phone(private.normalize_phone(input)) IS DISTINCT FROM private.normalize_phone(input)
$$, 'normalising is idempotent');

SELECT * FROM finish();
ROLLBACK;
