"""The discovery service: keeps the catalogue of free providers and models true (llmagg.discovery.v1)."""
