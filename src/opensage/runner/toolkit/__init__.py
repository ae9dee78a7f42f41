"""The sagemaker-training toolkit's contract, written once for every executor.

- :mod:`.contract`: the ``SM_*`` environment, ``resourceconfig.json`` and the hyperparameters
  as command-line arguments, exactly as the toolkit renders them (built-ins get the same).
- :mod:`.script`: script mode: where the user's code comes from, how it is unpacked and how
  it is started (``python train.py --epochs 10``, ``/bin/sh run.sh``, ``torchrun ...``), and
  how a failure reads (``AlgorithmError: ExecuteUserScriptError: ...``).
- :mod:`.isolation`: ``EnableNetworkIsolation`` as a network namespace with loopback only.
"""
