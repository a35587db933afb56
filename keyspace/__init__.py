"""The data model, with no threads: Keyspace (dict plus expiry index), value types, slot routing. Imports protocol."""
