"""The bottom layer: settings, database setup, shared model columns and domain errors.

Nothing here knows a domain or GraphQL; every other package may import it.
"""
