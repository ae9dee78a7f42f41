"""Built-in algorithms: one package per algorithm, each a standalone program that follows the
SageMaker training container contract (``python -m opensage.algorithms.<name> train``).

- ``spec``: declarative hyperparameter/channel/metric specs (``AlgorithmSpec.validate``).
- ``registry``: image URI -> algorithm (``lookup``), the only thing the server imports.
- ``contract``: the ``/opt/ml`` layout as seen from inside a job (``TrainingEnv``,
  ``run_main``).

Nothing here imports the server's layers; importing this package loads nothing heavy.
"""
