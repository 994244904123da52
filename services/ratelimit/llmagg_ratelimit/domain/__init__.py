"""Quota windows, limits, learning from upstreams and the usage ledger: pure logic, no grpc or network client."""
