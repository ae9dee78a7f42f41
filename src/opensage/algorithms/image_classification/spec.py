"""The image classification built-in's hyperparameters, channels and metrics, as
``image-classification:1`` declares them (SageMaker's Image Classification hyperparameter and
tuning pages). Hyperparameters marked "accepted, no effect" are validated as SageMaker's are but
do not change opensage's training.

Metrics are the MXNet training log lines the container prints each epoch, ``Epoch[3]
Train-accuracy=0.91`` and ``Epoch[3] Validation-accuracy=0.89`` (``Train-top_k_accuracy_5=``
with ``top_k``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from opensage.algorithms.channels import ChannelSpec
from opensage.algorithms.params import Bool, Choice, Float, Int, Rejected, Text
from opensage.algorithms.spec import AlgorithmSpec, MetricDefinition

NAME = "image-classification"
NO_EFFECT = "accepted, no effect in opensage"
IMAGENET_DEPTHS = (18, 34, 50, 101, 152, 200)
SMALL_DEPTHS = (20, 32, 44, 56, 110)


class Depth(Int):
    """ResNet depth: 18, 34, 50, 101, 152, 200, or 20, 32, 44, 56, 110 for small images."""

    def _parse(self, raw: str) -> int:
        value = super()._parse(raw)
        if value not in IMAGENET_DEPTHS + SMALL_DEPTHS:
            raise Rejected("ResNet depths are 18, 34, 50, 101, 152 and 200 (and 20, 32, 44, "
                           "56 and 110 for images of 32 pixels or less)")
        return value

    def accepted(self) -> str:
        return "one of 18, 34, 50, 101, 152, 200, 20, 32, 44, 56, 110"

    def invalid_examples(self) -> list[str]:
        return ["19", "0", "x"]


class ImageShape(Text):
    """``num_channels,height,width``, e.g. ``3,224,224``."""

    def _parse(self, raw: str) -> str:
        parts = raw.split(",")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise Rejected("num_channels,height,width, e.g. 3,224,224")
        channels, height, width = (int(p) for p in parts)
        if channels not in (1, 3) or height < 1 or width < 1:
            raise Rejected("1 or 3 channels and a positive height and width")
        return f"{channels},{height},{width}"

    def accepted(self) -> str:
        return "num_channels,height,width (e.g. 3,224,224)"

    def valid_example(self) -> str:
        return "3,224,224"

    def invalid_examples(self) -> list[str]:
        return ["224,224", "3,a,224", "4,224,224"]


class Epochs(Text):
    """``lr_scheduler_step``: comma-separated epochs, e.g. ``10,20``."""

    def _parse(self, raw: str) -> str:
        steps = [int(p) for p in raw.split(",")]
        if not steps or any(s < 1 for s in steps) or steps != sorted(steps):
            raise Rejected("increasing positive epochs separated by commas, e.g. 10,20")
        return ",".join(map(str, steps))

    def accepted(self) -> str:
        return "comma-separated increasing epochs (e.g. 10,20)"

    def valid_example(self) -> str:
        return "10,20"

    def invalid_examples(self) -> list[str]:
        return ["x", "20,10", "0"]


HYPERPARAMETERS = {
    "num_classes": Int(min=2, required=True,
                       description="Number of output classes (labels are 0 .. num_classes-1)"),
    "num_training_samples": Int(min=1, required=True,
                                description="Number of training examples in the train channel"),
    "augmentation_type": Choice(["crop", "crop_color", "crop_color_transform"],
                                description="Data augmentation: crop (random crop and "
                                            "horizontal flip), crop_color (also random "
                                            "brightness, contrast and saturation), "
                                            "crop_color_transform (also random rotation, "
                                            "shear and aspect ratio); none by default"),
    "beta_1": Float(0.0, 1.0, default=0.9, tunable=True, description="beta1 of adam"),
    "beta_2": Float(0.0, 1.0, default=0.999, tunable=True, description="beta2 of adam"),
    "checkpoint_frequency": Int(min=1, description="Epochs between saved model checkpoints "
                                                   "(default: only the best epoch's model)"),
    "early_stopping": Bool(default=False, description="Stop when validation accuracy stops "
                                                      "improving"),
    "early_stopping_min_epochs": Int(min=1, default=10,
                                     description="Epochs before early stopping may stop"),
    "early_stopping_patience": Int(min=1, default=5,
                                   description="Epochs without improvement before stopping"),
    "early_stopping_tolerance": Float(0.0, 1.0, default=0.0,
                                      description="Relative improvement of validation "
                                                  "accuracy that counts as improvement"),
    "epochs": Int(min=1, default=30, description="Number of training epochs"),
    "eps": Float(0.0, 1.0, default=1e-8, tunable=True, description="epsilon of adam and "
                                                                   "rmsprop"),
    "gamma": Float(0.0, 1.0, default=0.9, tunable=True, description="Decay factor of rmsprop"),
    "image_shape": ImageShape(default="3,224,224",
                              description="Input image dimensions num_channels,height,width"),
    "kv_store": Choice(["dist_sync", "dist_async"], description=NO_EFFECT),
    "learning_rate": Float(1e-6, 1.0, default=0.1, tunable=True,
                           description="Initial learning rate"),
    "lr_scheduler_factor": Float(0.0, 1.0, default=0.1,
                                 description="Factor the learning rate is multiplied by at "
                                             "each lr_scheduler_step"),
    "lr_scheduler_step": Epochs(description="Epochs at which the learning rate is reduced"),
    "mini_batch_size": Int(1, 10000, default=32, tunable=True,
                           description="Images per mini-batch"),
    "momentum": Float(0.0, 1.0, default=0.9, tunable=True,
                      description="Momentum of sgd and nag"),
    "multi_label": Int(0, 1, default=0,
                       description="1: each image has several labels (a 0/1 vector of "
                                   "num_classes), trained with a sigmoid per class"),
    "num_layers": Depth(min=18, max=200, default=152,
                        description="ResNet depth: 18, 34, 50, 101, 152, 200; for images of "
                                    "32 pixels or less 20, 32, 44, 56, 110"),
    "optimizer": Choice(["sgd", "adam", "rmsprop", "nag"], default="sgd", tunable=True),
    "precision_dtype": Choice(["float32", "float16"], default="float32",
                              description="float16: mixed precision on a GPU (float32 on CPU)"),
    "resize": Int(min=1, description="Shortest side of each image after resizing; required "
                                     "with application/x-image channels"),
    "top_k": Int(min=2, description="Also report top-k accuracy during training"),
    "use_pretrained_model": Int(0, 1, default=0,
                                description="1: start from pretrained ResNet weights found in "
                                            "OPENSAGE_PRETRAINED_MODELS_DIR (never downloaded)"),
    "use_weighted_loss": Int(0, 1, default=0,
                             description="1: weight the multi-label loss by class frequency"),
    "weight_decay": Float(0.0, 1.0, default=0.0001, tunable=True,
                          description="L2 weight decay"),
    "_tuning_objective_metric": Choice(["validation:accuracy"]),
}

RECORDIO_FORMAT = "recordio"
IMAGE_FORMAT = "image"
_DATA = {"application/x-recordio": RECORDIO_FORMAT, "application/x-image": IMAGE_FORMAT,
         "image/jpeg": IMAGE_FORMAT, "image/png": IMAGE_FORMAT}
_LST = {"application/x-image": "lst", "text/plain": "lst", "application/x-lst": "lst"}


def _data(required: bool, description: str) -> ChannelSpec:
    return ChannelSpec(required=required, content_types=_DATA,
                       default_content_type="application/x-recordio",
                       input_modes=("File", "Pipe"), description=description)


def _lst(description: str) -> ChannelSpec:
    return ChannelSpec(content_types=_LST, default_content_type="application/x-image",
                       input_modes=("File",), description=description)


CHANNELS = {
    "train": _data(True, "MXNet image RecordIO (.rec: IRHeader with the label, then an "
                         "encoded JPEG/PNG), or the images an .lst file of train_lst names "
                         "(application/x-image)"),
    "validation": _data(True, "As train; scored each epoch (validation:accuracy)"),
    "train_lst": _lst(".lst file(s): index<TAB>label(s)<TAB>relative image path, for "
                      "application/x-image training"),
    "validation_lst": _lst(".lst file(s) for application/x-image validation"),
    "model": ChannelSpec(content_types={"application/x-sagemaker-model": "model",
                                        "application/x-tar": "model",
                                        "application/octet-stream": "model"},
                         default_content_type="application/x-sagemaker-model",
                         input_modes=("File",),
                         description="Incremental training: the model.tar.gz of an earlier "
                                     "image-classification job (same num_layers, image_shape "
                                     "and num_classes) to start from"),
}


def _image_channels_are_complete(hps: Mapping[str, Any], formats: Mapping[str, str]
                                 ) -> Iterator[str]:
    for channel in ("train", "validation"):
        if formats.get(channel) == IMAGE_FORMAT and f"{channel}_lst" not in formats:
            yield (f"Channel '{channel}' holds images (application/x-image): it needs the "
                   f"'{channel}_lst' channel with the .lst file naming them and their labels.")
    if IMAGE_FORMAT in (formats.get("train"), formats.get("validation")) and \
            hps.get("resize") is None:
        yield ("resize is required with application/x-image channels (the shortest side of "
               "each image after resizing, at least image_shape's height and width).")


def epoch_metric(channel: str, metric: str) -> MetricDefinition:
    """``<channel lower>:<metric>`` in MXNet's ``Epoch[N] <Channel>-<metric>=<value>`` lines."""
    return MetricDefinition(f"{channel.lower()}:{metric}",
                            rf"Epoch\[\d+\] {channel}-{metric}=([0-9.eE+-]+)", "Maximize")


METRICS = (
    epoch_metric("Validation", "accuracy"),
    epoch_metric("Train", "accuracy"),
)

SPEC = AlgorithmSpec(name=NAME, hyperparameters=HYPERPARAMETERS, channels=CHANNELS,
                     metrics=METRICS, input_modes=("File", "Pipe"),
                     checks=(_image_channels_are_complete,),
                     supports_distributed_training=True)
