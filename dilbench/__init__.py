"""dilbench: experiment runner for dilated convolutions, all-conv nets, ResNet v2 and unfair backprop."""

__version__ = "0.1.0"
