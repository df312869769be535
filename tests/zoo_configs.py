"""Small configurations of every zoo model (fast tests) with one example's shape, shared by the
tests that build a model and its PyTorch twin from the same config (weights, ONNX import).
Imports nothing from convprop."""

SMALL = {"lenet5": ({}, (1, 28, 28)),
         "lenet5_classic": (dict(input_size=28), (1, 28, 28)),  # C3's mask, the RBF codes
         "alexnet_cifar": (dict(width=4), (3, 32, 32)),
         "vgg_cifar": (dict(stages=((4,), (8,)), hidden=8, input_size=16), (3, 16, 16)),
         "resnet20": (dict(widths=(4, 8, 16), blocks_per_stage=1, input_size=16),
                      (3, 16, 16)),
         "googlenet_mini": (dict(input_size=8), (3, 8, 8)),
         "c3d_mini": (dict(input_size=(4, 8, 8), widths=(2, 4, 4)), (1, 4, 8, 8)),
         "cnn1d": (dict(input_size=64, widths=(4, 4, 4), pools=(2, 2, 2)), (1, 64))}
