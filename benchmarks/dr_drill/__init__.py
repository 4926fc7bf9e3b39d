"""Backup and recovery drills: `scripts/dr_drill.sh` (docs/operations.md, "Backups and drills").

Each drill sends real messages through real worker and dispatcher processes to the fake Twilio, breaks something
mid-run (Redis, PostgreSQL, the provider, a worker), and counts what the provider received against the database:
how long sending stopped (RTO), how many messages were lost or sent twice (RPO). The drills run on a PostgreSQL
cluster and a redis-server of their own, on free ports, so the machine's shared servers are never touched.

- servers.py: the private PostgreSQL cluster and redis-server (start, kill, restart, dump, restore)
- pipeline.py: the Tidings processes (fake Twilio, workers, dispatcher) and the drill's own Django
- verdict.py: lost, duplicates, in doubt and the recovery times, computed from the two sets of counts
- drills.py: the drills themselves
- report.py: the one-line-per-drill table, markdown and JSON
"""
