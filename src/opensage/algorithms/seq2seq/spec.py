"""The seq2seq built-in's hyperparameters, channels and metrics, as ``seq2seq:1`` declares them
(SageMaker's Sequence-to-Sequence hyperparameter and tuning pages). Hyperparameters marked
"accepted, no effect" are validated as SageMaker's are but do not change opensage's model."""

from __future__ import annotations

from opensage.algorithms.channels import ChannelSpec
from opensage.algorithms.firstparty import quality_metric
from opensage.algorithms.params import Bool, Choice, Float, Int, OrAuto
from opensage.algorithms.spec import AlgorithmSpec

NAME = "seq2seq"
NO_EFFECT = "accepted, no effect in opensage"

HYPERPARAMETERS = {
    "batch_size": Int(1, 10000, default=64, tunable=True,
                      description="Mini-batch size (sentences)"),
    "beam_size": Int(1, 100, default=5, description="Beam size of beam search (inference and "
                                                    "validation BLEU)"),
    "bleu_sample_size": Int(-1, 10_000_000, default=0,
                            description="Validation sentences decoded for validation:bleu at "
                                        "each checkpoint; -1 all, 0 none (all when "
                                        "optimized_metric is bleu)"),
    "bucket_width": Int(1, 1000, default=10, description=NO_EFFECT),
    "bucketing_enabled": Bool(default=True, description=NO_EFFECT),
    "checkpoint_frequency_num_batches": Int(1, 10_000_000, default=1000,
                                            description="Batches between validations "
                                                        "(checkpoints); also at each epoch end"),
    "checkpoint_threshold": Int(1, 10_000, default=3,
                                description="Checkpoints without improvement of "
                                            "optimized_metric before training stops"),
    "clip_gradient": Float(0.0, None, default=1.0, tunable=True,
                           description="Clip gradient values to this absolute value (0: off)"),
    "cnn_activation_type": Choice(["glu", "relu", "softrelu", "sigmoid", "tanh"],
                                  default="glu", description=NO_EFFECT),
    "cnn_hidden_dropout": Float(0.0, 1.0, default=0.0, description=NO_EFFECT),
    "cnn_kernel_width_decoder": Int(1, 1000, default=5, description=NO_EFFECT),
    "cnn_kernel_width_encoder": Int(1, 1000, default=3, description=NO_EFFECT),
    "cnn_num_hidden": Int(1, 10000, default=512, description=NO_EFFECT),
    "decoder_type": Choice(["rnn", "cnn"], default="rnn",
                           description="rnn (cnn is not supported by opensage)"),
    "embed_dropout_source": Float(0.0, 1.0, default=0.0, tunable=True),
    "embed_dropout_target": Float(0.0, 1.0, default=0.0, tunable=True),
    "encoder_type": Choice(["rnn", "cnn"], default="rnn",
                           description="rnn (cnn is not supported by opensage)"),
    "fixed_rate_lr_half_life": Int(1, None, default=10,
                                   description="Checkpoints for fixed_rate_* schedulers"),
    "learning_rate": Float(1e-6, 1.0, default=0.0003, tunable=True),
    "loss_type": Choice(["cross-entropy"], default="cross-entropy"),
    "lr_scheduler_type": Choice(["plateau_reduce", "fixed_rate_inv_t",
                                 "fixed_rate_inv_sqrt_t"], default="plateau_reduce"),
    "max_num_batches": Int(-1, None, default=-1, description="Stop after this many batches "
                                                             "(-1: no limit)"),
    "max_num_epochs": Int(1, None, description="Stop after this many epochs (default: until "
                                               "checkpoint_threshold stops it)"),
    "max_seq_len_source": Int(1, 10000, default=100, tunable=True,
                              description="Source sequences are cut to this length"),
    "max_seq_len_target": Int(1, 10000, default=100, tunable=True,
                              description="Target sequences are cut to this length"),
    "min_num_epochs": Int(0, None, default=0, description="Epochs before early stopping may "
                                                          "stop training"),
    "momentum": Float(0.0, 1.0, tunable=True, description="Momentum of sgd"),
    "num_embed_source": Int(1, 10000, default=512, tunable=True,
                            description="Source token embedding size"),
    "num_embed_target": Int(1, 10000, default=512, tunable=True,
                            description="Target token embedding size"),
    "num_layers_decoder": Int(1, 10, default=1, tunable=True),
    "num_layers_encoder": Int(1, 10, default=1, tunable=True),
    "optimized_metric": Choice(["perplexity", "bleu", "accuracy"], default="perplexity",
                               description="Validation metric for early stopping and the "
                                           "model kept"),
    "optimizer_type": Choice(["adam", "sgd", "rmsprop"], default="adam", tunable=True),
    "plateau_reduce_lr_factor": Float(0.0, 1.0, default=0.5, tunable=True),
    "plateau_reduce_lr_threshold": Int(1, 10000, default=3, tunable=True),
    "rnn_attention_in_upper_layers": Bool(default=True, description=NO_EFFECT),
    "rnn_attention_num_hidden": OrAuto(Int(1, 10000), words=("auto",),
                                       description="Hidden units of mlp attention "
                                                   "(default rnn_num_hidden)"),
    "rnn_attention_type": Choice(["dot", "fixed", "mlp", "bilinear"], default="mlp",
                                 tunable=True),
    "rnn_cell_type": Choice(["lstm", "gru"], default="lstm", tunable=True),
    "rnn_decoder_state_init": Choice(["last", "avg", "zero"], default="last", tunable=True),
    "rnn_first_residual_layer": Int(1, 10, default=2, description=NO_EFFECT),
    "rnn_num_hidden": Int(2, 10000, default=1024, tunable=True,
                          description="Hidden units of the encoder (both directions together) "
                                      "and decoder RNNs; even"),
    "rnn_residual_connections": Bool(default=False, description=NO_EFFECT),
    "rnn_decoder_hidden_dropout": Float(0.0, 1.0, default=0.0, tunable=True),
    "training_metric": Choice(["perplexity", "accuracy"], default="perplexity"),
    "weight_decay": Float(0.0, 10.0, default=0.0, tunable=True),
    "weight_init_scale": Float(0.0, None, default=2.34,
                               description="Scale of uniform initialisation"),
    "weight_init_type": Choice(["xavier", "uniform"], default="xavier"),
    "xavier_factor_type": Choice(["in", "out", "avg"], default="in"),
    "_tuning_objective_metric": Choice(["validation:accuracy", "validation:bleu",
                                        "validation:perplexity"]),
}

_RECORDIO = {"application/x-recordio-protobuf": "recordio-protobuf"}


def _data(description: str) -> ChannelSpec:
    return ChannelSpec(required=True, content_types=_RECORDIO,
                       default_content_type="application/x-recordio-protobuf",
                       input_modes=("File",), description=description)


CHANNELS = {
    "train": _data("RecordIO-protobuf Records: source token ids as the Int32 features "
                   "'values', target token ids as the Int32 label 'values'"),
    "validation": _data("Records as train; scored at each checkpoint"),
    "vocab": ChannelSpec(required=True,
                         content_types={"application/json": "files", "text/plain": "files",
                                        **{k: "files" for k in _RECORDIO}},
                         default_content_type="application/json", input_modes=("File",),
                         description="vocab.src.json and vocab.trg.json (token -> id)"),
}

METRICS = (
    quality_metric("validation", "perplexity", "Minimize"),
    quality_metric("validation", "accuracy", "Maximize"),
    quality_metric("validation", "bleu", "Maximize"),
    quality_metric("train", "perplexity", "Minimize", epoch=True),
)

SPEC = AlgorithmSpec(name=NAME, hyperparameters=HYPERPARAMETERS, channels=CHANNELS,
                     metrics=METRICS, input_modes=("File",))
