DROP VIEW IF EXISTS api.imports, api.import_errors;
DROP FUNCTION IF EXISTS private.merge_import(bigint);
DROP FUNCTION IF EXISTS private.property_hash(text, text, text, text, text);
DROP FUNCTION IF EXISTS private.identity_hash(text, bytea, text[], text[]);
DROP TABLE app.external_refs, app.leads, app.verticals, app.identity_properties,
           app.identity_emails, app.identity_phones, app.email_addresses, app.phone_numbers,
           app.identities, app.properties, app.import_errors, app.import_extractions,
           app.file_rows, app.imports;
