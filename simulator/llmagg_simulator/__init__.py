"""A provider simulator speaking the OpenAI, Anthropic, Gemini and Cohere wire formats with scripted faults."""
