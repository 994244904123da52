"""`llmagg`, the command line of llm-aggregator: one module per command group."""
