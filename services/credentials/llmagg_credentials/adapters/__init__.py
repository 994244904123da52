"""Stores behind the domain's `Store` port: Vault/OpenBao KV v2, and memory."""
