"""Gatewatch gates: promote, hold or roll back a deployment from a policy (its checks' evidence, the
decision stored under an idempotency key, the actions it triggers), and the HTTP and Lambda adapters."""
