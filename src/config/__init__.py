"""The config: its typed schema, and Hydra's own errors as one line."""
