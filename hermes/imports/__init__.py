"""The import pipeline's pure parts (#5): reading a CSV file's records (LAND) and turning
a landed row into an extraction (PARSE). The SQL side is db/functions/app/imports.sql
and db/functions/private/import_merge.sql; the API route api/routes/imports.py; the
worker workers/entrypoints/imports.py."""
