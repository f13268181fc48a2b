"""The live service: the engine on Kafka.

`ports` names what the service layer needs from the outside world (a case store, an outbox,
a clock); `handlers` is the service layer itself, batched and Faust-free, unit-tested against
in-memory fakes; the Faust app that wires it to Kafka is `caseclock.live.faust_app` (a thin
adapter).
"""
