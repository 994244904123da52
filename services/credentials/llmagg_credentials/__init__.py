"""The credentials service: provider accounts and keys, client API keys, leases, ext_authz."""
