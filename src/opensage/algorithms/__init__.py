"""Built-in algorithms: one package per algorithm, each a standalone program that follows the
SageMaker training container contract (``python -m opensage.algorithms.<name> train``).

- ``spec``: an algorithm's whole declaration (``AlgorithmSpec``: validate, describe), built
  from ``params`` (hyperparameter constraints: ``Int``, ``Float``, ``Choice``...), ``channels``
  (``ChannelSpec``: content types, input modes) and metrics; ``errors``: what a spec rejects.
- ``registry``: image URI -> algorithm (``lookup``), the only thing the server imports.
- ``contract``: the ``/opt/ml`` layout as seen from inside a job (``TrainingEnv``,
  ``run_main``).

Nothing here imports the server's layers; importing this package loads nothing heavy.
"""
