"""The replay: send a prompt CSV to a model or agent and store every result and stream event."""
