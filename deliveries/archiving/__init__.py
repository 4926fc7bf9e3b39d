"""The parts of archiving and restoring messages (the services are deliveries.services.archive and .restore).

`lines` (a row as one JSON line, and back), `day_files` (gzip members appended to a day's file and read back),
`rows` (rows written with their own ids and values, deleted by id), `holds` (what keeps a finished message in the
hot tables), `tallies` (the counts of archived messages the campaign and batch figures add). docs/operations.md,
*Archiving and retention*, says why each is as it is.
"""
