"""In-memory fakes of the ports (tagrelay/ports.py), for service and rule tests without servers.

Each keeps the semantics tagrelay depends on (compare-and-swap conflicts, conditional writes,
pagination) and can inject faults; tests/contract holds each fake and its adapter to the same
assertions. ``world.FakeWorld`` wires them into the services as runtime.py wires the adapters.
"""
