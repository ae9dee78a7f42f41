"""PLACEHOLDER — CloudWatch Logs handlers, being implemented."""
