"""A provider simulator speaking the OpenAI wire format with scripted faults (test infrastructure)."""
