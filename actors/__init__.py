"""Everything with a thread or a socket: bootstrap, connection actors, shard actors. Imports all other packages and pykka.

Who may wait for whom (pykka's deadlock guide: the ask graph must be acyclic):
connections (event loop) -> tell -> shards -> call_soon_threadsafe -> connections. Nothing ever
blocks the event loop on a shard; shards never wait for each other except at a global barrier,
which every shard reaches in the same order because only the loop thread enqueues work.
"""
