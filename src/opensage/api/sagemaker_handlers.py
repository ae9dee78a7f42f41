"""SageMaker operation handlers."""
