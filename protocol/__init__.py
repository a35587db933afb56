"""RESP2/RESP3 wire protocol: request reader, reply types and encoder, error texts. Imports only config."""
