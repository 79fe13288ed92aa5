"""The use cases behind `gatewatch.api`, one module per area: store, delivery, canary, slos, gates."""
