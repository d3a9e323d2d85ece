"""Preprocessing layers that compile into the model graph (Keras 3 names, arguments and ``adapt()``)."""
from __future__ import annotations

from .augmentation import (RandomBrightness, RandomContrast, RandomFlip, RandomRotation, RandomTranslation,
                           RandomZoom)
from .clahe import ContrastLimitedAdaptiveHistogramEqualization
from .color_adjust import RandomColorDegeneration, RandomHue, RandomSaturation, RandomSharpness
from .color_augmentation import RandomGrayscale, RandomInvert
from .encoding import CategoryEncoding, Discretization
from .hashed_crossing import HashedCrossing
from .hashing import Hashing
from .image import CenterCrop, Rescaling, Resizing
from .lookup import IntegerLookup, StringLookup
from .normalization import Normalization
from .random_crop import RandomCrop
from .random_erasing import RandomErasing
from .random_gaussian_blur import RandomGaussianBlur
from .random_shear import RandomShear
from .random_warps import RandomElasticTransform, RandomPerspective
from .aug_mix import AugMix
from .max_num_bounding_boxes import MaxNumBoundingBoxes
from .mel_spectrogram import MelSpectrogram
from .mixing import CutMix, MixUp
from .color_jitter import RandomColorJitter
from .rand_augment import RandAugment
from .stft_spectrogram import STFTSpectrogram
from .text_vectorization import TextVectorization
from .tone import AutoContrast, Equalization, RandomPosterization, Solarization

__all__ = ["Normalization", "Rescaling", "Resizing", "CenterCrop", "CategoryEncoding", "Discretization", "Hashing",
           "HashedCrossing",
           "StringLookup", "IntegerLookup", "TextVectorization", "RandomFlip", "RandomRotation", "RandomZoom",
           "RandomTranslation", "RandomContrast", "RandomBrightness", "RandomCrop",
           "RandomGrayscale", "RandomInvert", "RandomHue", "RandomSaturation", "RandomColorDegeneration",
           "RandomSharpness", "Solarization", "RandomPosterization", "AutoContrast", "Equalization",
           "RandomShear", "MixUp", "CutMix", "RandomColorJitter", "RandAugment",
           "RandomErasing", "RandomGaussianBlur", "RandomPerspective", "RandomElasticTransform", "AugMix", "STFTSpectrogram",
           "MelSpectrogram", "MaxNumBoundingBoxes",
           "ContrastLimitedAdaptiveHistogramEqualization"]

# Keras's preprocessing layers take Python values positionally (``RandomFlip()(images, True)``, as its
# TFDataLayer allows): the flag the layer call checks, set once per exported class so subclasses inherit it.
for _name in __all__:
    globals()[_name]._allow_non_tensor_positional_args = True

# Keras's DataLayer (the base of these, not of the lookups, hashing, TextVectorization or STFTSpectrogram) takes
# one positional argument in ``__call__``: ``RandomFlip()(images, True)`` is a TypeError there, so a program that
# runs under Keras never passes ``training`` positionally; the layer call checks this flag.
for _name in set(__all__) - {"Hashing", "HashedCrossing", "StringLookup", "IntegerLookup", "TextVectorization",
                             "STFTSpectrogram"}:
    globals()[_name]._keras_data_layer = True
