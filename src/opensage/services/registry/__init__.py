"""The model registry (model package groups, model packages) and algorithm resources."""
