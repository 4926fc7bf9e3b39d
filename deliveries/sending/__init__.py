"""The worker's send path: a send job's queued messages through their providers, many calls at once.

Read top-down, each module once:

- `job.py`: `send_messages()`, what a send job runs: its messages still sendable, channel by channel.
- `channel_sender.py`: `ChannelSender`, the loop that sends one channel's messages through its provider.
- `gate.py`: `ProviderGate`, whether the provider may take a call now (circuit breaker and send rate).
- `claims.py`: `claim_messages()`, queued -> sending just before the call, and what the call is given.
- `call_pool.py`: `CallPool`, the calls in flight (libcurl's multi interface, or threads).
- `outcomes.py`: `OutcomeRecorder` and the `record_*` services: sent, retried, failed or suppressed.
- `shutdown.py`: SIGTERM finishes the calls in flight and claims nothing more.

Where a job's messages come from, and the jobs it takes over, is `deliveries.jobs` and `deliveries.job_source`.
"""
