"""The Envoy gateway's configuration, generated from the proto descriptor and the service table."""
