"""Lambda entry points: Powertools decorators, then one call into the services."""
