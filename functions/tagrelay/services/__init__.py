"""Orchestration: promote(event) and track(now) call the pure domain and the adapters."""
