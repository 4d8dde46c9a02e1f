"""The config: its typed schema, the resolvers conf/ uses, Hydra's own errors as one line, and
the one place that reaches into Hydra's private code to print them so (hydra_internals)."""
