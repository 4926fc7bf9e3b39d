"""The database machinery under the message state machine and the bulk writes: how Tidings talks SQL fast.

Nothing here knows what a status means (that is `deliveries.state`); each module does one thing with SQL:
`lookups` (many values as one parameter, rows found by id), `row_values` (per-row values in one UPDATE),
`updates` (UPDATE ... RETURNING), `shaped_updates` (a transition's statement text kept by shape),
`statements` (steps that yield statements, run alone or pipelined), `status_changes` (one transition's UPDATEs
and events), `events` (every write of a message's timeline), `row_inserts` (COPY and one-statement inserts),
`fields` (a model's columns, typed) and `features` (what the database in use allows, for callers choosing a
strategy). docs/performance.md says why.
"""
