"""Accounts, client keys and who may do what: no grpc, no Vault client."""
