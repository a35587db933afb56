"""Persistence: AOF writer and loader, multi-part manifest, rewrite, RDB codec. Imports commands and keyspace. (Issue 5.)"""
