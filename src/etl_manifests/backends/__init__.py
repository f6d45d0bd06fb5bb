"""Built-in storage backends, each a default plugin registered like third-party ones."""
